//! The Docker and Kubernetes examples hold configurations pidzero accepts, and
//! stay in step with what `tests/oci/run.sh` runs under runc.
//!
//! Neither Docker (no daemon) nor Kubernetes runs in CI, so these tests read the
//! files: `pidzero check` on every configuration they ship, and the few facts
//! that tie the Dockerfiles, the pod and the tested files together. The pod's
//! ConfigMap keeps its files as `|` block scalars so that they can be read here
//! without a YAML library.
//!
//! `check` resolves the `user` fields (`www-data`, `nobody`) from this machine's
//! `/etc/passwd`, as it would inside the Debian image: a Debian-like host has both.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::PathBuf;

fn example(path: &str) -> PathBuf {
    manifest_dir().join("examples").join(path)
}

fn read(path: &str) -> String {
    let p = example(path);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json(text: &str, what: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON: {e}\n{text}"))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The value of the one `key:` in `yaml`: for `key: |`, the block scalar (the
/// lines after it indented deeper than the key, less the first one's
/// indentation, with one final newline, as YAML's "clip" reads it); otherwise
/// the text after the colon. Panics unless `key:` occurs exactly once, so that a
/// manifest this reader cannot follow fails the test rather than being guessed at.
fn yaml_value(yaml: &str, key: &str) -> String {
    let lines: Vec<&str> = yaml.lines().collect();
    let header = format!("{key}:");
    let found: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim_start().starts_with(&header))
        .collect();
    assert_eq!(found.len(), 1, "`{key}:` should occur once in the manifest");
    let at = found[0];
    let rest = lines[at].trim_start()[header.len()..].trim();
    if rest != "|" {
        return rest.to_string();
    }
    let key_indent = indent(lines[at]);
    let mut body: Vec<&str> = Vec::new();
    let mut block_indent = None;
    for line in &lines[at + 1..] {
        if line.trim().is_empty() {
            body.push("");
            continue;
        }
        let n = indent(line);
        if n <= key_indent {
            break;
        }
        let b = *block_indent.get_or_insert(n);
        assert!(
            n >= b,
            "`{key}`: a line less indented than the first: {line:?}"
        );
        body.push(&line[b..]);
    }
    while body.last() == Some(&"") {
        body.pop();
    }
    body.join("\n") + "\n"
}

/// `pidzero check` on a config dir holding these two files.
fn check(daemons: &str, config: &str) -> Finished {
    let dir = Dir::new("manifest");
    dir.write("daemons.json", daemons);
    dir.write("config.json", config);
    pz().args(["check", "--config-dir", &dir.s("")])
        .run(DEADLINE)
}

const POD: &str = "kubernetes/pod.yaml";

#[test]
fn yaml_value_reads_block_scalars_and_plain_values() {
    let yaml =
        "a:\n  k: plain value\n  f: |\n    {\n      \"x\": 1\n\n    }\n  g: |\n    other\nb: 2\n";
    assert_eq!(yaml_value(yaml, "f"), "{\n  \"x\": 1\n\n}\n");
    assert_eq!(yaml_value(yaml, "g"), "other\n");
    assert_eq!(yaml_value(yaml, "k"), "plain value");
}

#[test]
fn pod_configmap_files_pass_check() {
    let pod = read(POD);
    let f = check(
        &yaml_value(&pod, "daemons.json"),
        &yaml_value(&pod, "config.json"),
    );
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(f.stdout_text().contains("2 daemon(s) OK"), "{}", f.dump());
}

#[test]
fn pod_runs_the_daemons_the_oci_test_runs() {
    let pod = read(POD);
    let in_pod = json(&yaml_value(&pod, "daemons.json"), "the pod's daemons.json");
    let tested = json(
        &read("docker/debian/daemons.json"),
        "examples/docker/debian/daemons.json",
    );
    assert_eq!(
        in_pod, tested,
        "the ConfigMap's daemons.json differs from examples/docker/debian/daemons.json"
    );
}

/// The probes ask `GET /health` on the port of `api.listen`, with no header: that
/// route is the one that needs no token. The token comes from the Secret through
/// `PIDZERO_API_TOKEN`, never from the ConfigMap.
#[test]
fn pod_probes_ask_health_on_the_api_port_and_the_token_comes_from_the_secret() {
    let pod = read(POD);
    let config = json(&yaml_value(&pod, "config.json"), "the pod's config.json");
    let listen = config["api"]["listen"]
        .as_str()
        .unwrap_or_else(|| panic!("api.listen is not set: {config}"));
    let port = listen.rsplit(':').next().unwrap_or_default();
    assert!(
        listen.starts_with("0.0.0.0:"),
        "the kubelet probes the pod's IP: {listen}"
    );
    assert_eq!(
        config["api"]["token"],
        Value::Null,
        "no token in the ConfigMap"
    );

    let named_port = format!("- name: pidzero\n          containerPort: {port}\n");
    assert!(
        pod.contains(&named_port),
        "no container port `pidzero` = {port}"
    );
    let probe = "httpGet:\n          path: /health\n          port: pidzero\n";
    for kind in ["readinessProbe:\n        ", "livenessProbe:\n        "] {
        assert!(
            pod.contains(&format!("{kind}{probe}")),
            "{kind:?} should GET /health on port pidzero"
        );
    }
    assert!(!pod.contains("httpHeaders"), "/health needs no token");

    let secret = "kind: Secret\nmetadata:\n  name: pidzero-web-api\n";
    assert!(pod.contains(secret), "the Secret pidzero-web-api");
    assert!(!yaml_value(&pod, "token").is_empty(), "the Secret's token");
    let env = "- name: PIDZERO_API_TOKEN\n          valueFrom:\n            secretKeyRef:\n              name: pidzero-web-api\n              key: token\n";
    assert!(pod.contains(env), "PIDZERO_API_TOKEN from the Secret");
    assert!(
        pod.contains("args: [\"--config-dir\", \"/etc/pidzero\"]")
            && pod.contains("mountPath: /etc/pidzero"),
        "the ConfigMap is pidzero's config dir"
    );
}

#[test]
fn docker_examples_pass_check() {
    let dir = example("docker/debian");
    let f = pz()
        .args(["check", "--config-dir", path_str(&dir)])
        .run(DEADLINE);
    assert_eq!(f.status(), 0, "debian: {}", f.dump());

    // The scratch image's one program, /httpd, exists only inside the image
    // (tests/oci/run.sh case 7 runs it there): on this host, check's preflight
    // must report exactly that and nothing else.
    let dir = example("docker/scratch");
    let f = pz()
        .args(["check", "--json", "--config-dir", path_str(&dir)])
        .run(DEADLINE);
    let problems: Vec<serde_json::Value> =
        serde_json::from_str(&f.stdout_text()).unwrap_or_else(|e| panic!("{e}: {}", f.dump()));
    let errors: Vec<&serde_json::Value> = problems
        .iter()
        .filter(|p| p["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "scratch: {}", f.dump());
    assert_eq!(errors[0]["daemon"], "web", "{}", f.dump());
    assert_eq!(errors[0]["field"], "command", "{}", f.dump());
    assert!(
        errors[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/httpd does not exist")),
        "{}",
        f.dump()
    );
}

/// Each Dockerfile copies the files of its directory (the ones `tests/oci/run.sh`
/// runs), starts pidzero as PID 1 and asks `pidzero health` for its HEALTHCHECK.
#[test]
fn dockerfiles_copy_the_tested_files() {
    for image in ["debian", "scratch"] {
        let file = read(&format!("docker/Dockerfile.{image}"));
        let copy = format!(
            "COPY examples/docker/{image}/daemons.json examples/docker/{image}/config.json /"
        );
        let facts = [
            copy.as_str(),
            "COPY examples/docker/www ",
            "ENTRYPOINT [\"/pidzero\"]",
            "CMD [\"/pidzero\", \"health\"]",
            "RUSTFLAGS=\"-C target-feature=+crt-static\"",
            "--target x86_64-unknown-linux-gnu",
        ];
        for fact in facts {
            assert!(
                file.contains(fact),
                "Dockerfile.{image} lacks `{fact}`:\n{file}"
            );
        }
    }
}
