//! §2 `restart_delay`: a daemon that exits at once, restarted with
//! `restart_delay: 0`, must not turn pidzero into a busy loop.

mod common;

use common::*;

/// pidzero's own CPU time so far (user + system), in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = proc_stat(pid).expect("pidzero is running");
    // utime and stime are fields 14 and 15 of /proc/PID/stat.
    stat[11].parse::<u64>().unwrap() + stat[12].parse::<u64>().unwrap()
}

#[test]
fn a_zero_restart_delay_restarts_a_few_times_not_thousands() {
    let d = Dir::new("crashloop");
    d.daemons(
        r#"[{"name": "w", "command": ["/bin/true"], "restart": "always", "restart_delay": 0}]"#,
    );
    let mut r = pz().config_dir(&d).spawn();
    let warning = r.wait_event("config_warning", Some("w"));
    assert_eq!(warning["field"], "restart_delay", "{warning}");
    r.wait_event("started", Some("w"));
    let ticks_before = cpu_ticks(r.pid);
    let starts = || {
        r.records()
            .iter()
            .filter(|rec| is_event(rec, "started", Some("w")))
            .count()
    };
    // Watch for about 2 s: a busy loop shows thousands of starts at once.
    let too_many = wait_until(secs(2.0), || starts() > 10);
    let (count, ticks) = (starts(), cpu_ticks(r.pid) - ticks_before);
    r.assert_running();
    assert!(too_many.is_none(), "{count} starts in 2 s\n{}", r.dump());
    assert!(count >= 2, "it is restarted at all: {count}\n{}", r.dump());
    // 2 s at 100 ticks/s is 200 ticks; a busy loop spent 16 % of it (~32).
    assert!(
        ticks <= 10,
        "pidzero used {ticks} ticks of CPU in 2 s\n{}",
        r.dump()
    );
}
