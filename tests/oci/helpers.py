#!/usr/bin/env python3
"""Small helpers for tests/oci/run.sh, kept out of the shell script where JSON or
/proc parsing would be fragile in bash. Standard library only (CI has python3, not
necessarily PyYAML or jq). Every subcommand exits non-zero with a message on stderr
when it cannot do its job, so the calling script fails loudly.

  spec CONFIG ARGS_JSON [KEY=VALUE...]
                             edit a `runc spec` config.json for pidzero as PID 1,
                             adding KEY=VALUE to the process's environment
  block FILE KEY             print the `KEY: |` block scalar of a YAML manifest (the
                             ConfigMap's files, the Secret's value), dedented
  record FILE SOURCE STREAM TEXT
                             exit 0 when FILE (a container's stdout) has a JSON record
                             of SOURCE on STREAM whose line contains TEXT
  event FILE EVENT DAEMON [KEY=VALUE...]
                             same for an event record of DAEMON ("-": an event about
                             no daemon), values compared as JSON text
  all-json FILE              exit 0 when every line of FILE is a JSON object record
  daemon-pid                 read `pidzero status --json` on stdin, print NAME's pid
  procs PID...               print "pid ppid state uid comm" for each live host pid
  metric NAME                read Prometheus text on stdin, print NAME's value
  is-static FILE             exit 0 when FILE is an ELF executable without an interpreter
"""

import json
import struct
import sys

# Docker's default capability set (moby's oci/caps/defaults.go): runc's own default
# spec keeps only AUDIT_WRITE, KILL and NET_BIND_SERVICE, which would make `user` in
# daemons.json fail (no SETUID/SETGID) where it works under Docker.
DOCKER_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]


def fail(msg):
    print(f"helpers.py: {msg}", file=sys.stderr)
    sys.exit(2)


def spec(path, args_json, env):
    with open(path) as f:
        cfg = json.load(f)
    proc = cfg["process"]
    # No terminal: runc then hands the container's stdout and stderr to runc's own,
    # which the test redirects to files, as Docker does without -t.
    proc["terminal"] = False
    proc["args"] = json.loads(args_json)
    proc["env"] = proc.get("env", []) + list(env)
    proc["user"] = {"uid": 0, "gid": 0}
    proc["noNewPrivileges"] = False
    proc["capabilities"] = {
        k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted")
    }
    # A writable root like a Docker container's (the image layout supplies /run
    # for the control socket; each container gets its own copy of the rootfs).
    cfg["root"] = {"path": "rootfs", "readonly": False}
    cfg["hostname"] = "pidzero-oci"
    # The network namespace of `runc spec` is kept: runc brings up `lo` in it, so
    # httpd's port 8080 and the health probe to 127.0.0.1 work in every container
    # without clashing with the host or with a container of another case.
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def block(path, key):
    """The `KEY: |` block scalar of a YAML file, read line by line: the lines after
    the header that are indented deeper than the key, less the first one's
    indentation. No YAML library (CI need not have PyYAML); the manifests keep
    their files in this form. Also reads a plain `KEY: value` (the Secret)."""
    with open(path) as f:
        lines = f.read().splitlines()
    found = [i for i, l in enumerate(lines) if l.strip().startswith(key + ":")]
    if len(found) != 1:
        fail(f"{path}: expected one `{key}:`, found {len(found)}")
    i = found[0]
    head = lines[i].strip()[len(key) + 1 :].strip()
    if head != "|":
        print(head)
        return 0
    key_indent = len(lines[i]) - len(lines[i].lstrip())
    body, indent = [], None
    for line in lines[i + 1 :]:
        if not line.strip():
            body.append("")
            continue
        n = len(line) - len(line.lstrip())
        if n <= key_indent:
            break
        indent = n if indent is None else indent
        if n < indent:
            fail(f"{path}: `{key}`: a line less indented than the block's first")
        body.append(line[indent:])
    while body and not body[-1]:
        body.pop()
    print("\n".join(body))
    return 0


def records(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec


def record(path, source, stream, text):
    for rec in records(path):
        if (
            rec.get("source") == source
            and rec.get("stream") == stream
            and text in str(rec.get("line", ""))
        ):
            return 0
    return 1


def event(path, name, daemon, pairs):
    want = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        want[key] = value
    for rec in records(path):
        if rec.get("stream") != "event" or rec.get("event") != name:
            continue
        if rec.get("daemon") != (None if daemon == "-" else daemon):
            continue
        if all(json.dumps(rec.get(k)).strip('"') == v for k, v in want.items()):
            return 0
    return 1


def all_json(path):
    count = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except ValueError:
                print(f"{path}:{n}: not JSON: {line!r}", file=sys.stderr)
                return 1
            keys = list(rec)[:2] if isinstance(rec, dict) else []
            if keys != ["timestamp", "source"]:
                print(f"{path}:{n}: not a record: {line!r}", file=sys.stderr)
                return 1
            count += 1
    if count == 0:
        print(f"{path}: no records", file=sys.stderr)
        return 1
    return 0


def daemon_pid(name):
    daemons = json.load(sys.stdin)
    for d in daemons:
        if d.get("name") == name and isinstance(d.get("pid"), int):
            print(d["pid"])
            return 0
    fail(f"no running daemon named {name} in the status")
    return 1


def procs(pids):
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue  # gone since `runc ps` listed it
        # comm may hold spaces and parentheses: split at the last ')'.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        state, ppid = fields[0], fields[1]
        uid = "?"
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uid = line.split()[1]
        print(pid, ppid, state, uid, comm.replace(" ", "_"))
    return 0


def metric(name):
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            print(parts[1])
            return 0
    fail(f"no metric {name}")
    return 1


def is_static(path):
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                print(f"{path}: not a 64-bit ELF file", file=sys.stderr)
                return 1
            phoff = struct.unpack_from("<Q", head, 32)[0]
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                (p_type,) = struct.unpack("<I", f.read(4))
                if p_type == 3:  # PT_INTERP: needs a dynamic loader
                    print(f"{path}: dynamically linked", file=sys.stderr)
                    return 1
    except OSError as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv):
    if len(argv) < 2:
        fail("usage: helpers.py SUBCOMMAND ...")
    cmd, rest = argv[1], argv[2:]
    if cmd == "spec" and len(rest) >= 2:
        spec(rest[0], rest[1], rest[2:])
        return 0
    if cmd == "block" and len(rest) == 2:
        return block(*rest)
    if cmd == "record" and len(rest) == 4:
        return record(*rest)
    if cmd == "event" and len(rest) >= 3:
        return event(rest[0], rest[1], rest[2], rest[3:])
    if cmd == "all-json" and len(rest) == 1:
        return all_json(rest[0])
    if cmd == "daemon-pid" and len(rest) == 1:
        return daemon_pid(rest[0])
    if cmd == "procs":
        return procs(rest)
    if cmd == "metric" and len(rest) == 1:
        return metric(rest[0])
    if cmd == "is-static" and len(rest) == 1:
        return is_static(rest[0])
    fail(f"bad usage: {argv[1:]}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
