//! §2/§3 files as editors write them: a UTF-8 byte-order mark is accepted, an
//! empty file is called empty, and one typo is one message.

mod common;

use common::*;

const BOM: &str = "\u{feff}";

#[test]
fn files_with_a_byte_order_mark_are_read() {
    let d = Dir::new("bom");
    d.daemons(&format!(
        r#"{BOM}[{{"name": "a", "command": ["/bin/true"]}}]"#
    ));
    d.config(&format!(r#"{BOM}{{"shutdown_timeout": 3}}"#));
    let c = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(c.status(), 0, "{}", c.dump());
    // Positions count from the first character after the mark.
    d.daemons(&format!(
        "{BOM}[{{\"name\": \"a\", \"command\": [\"/bin/true\"],\n  \"vitall\": true}}]"
    ));
    let c = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(c.status(), 2, "{}", c.dump());
    assert!(
        c.stderr
            .contains("daemons.json:2:3: daemon a: field vitall:"),
        "{}",
        c.dump()
    );
}

#[test]
fn empty_files_are_called_empty() {
    for (file, other) in [
        ("daemons.json", "config.json"),
        ("config.json", "daemons.json"),
    ] {
        for text in ["", "  \n", BOM] {
            let d = Dir::new("emptyfile");
            d.write(file, text);
            if other == "daemons.json" {
                d.daemons(r#"[{"name": "a", "command": ["/bin/true"]}]"#);
            }
            let c = pz().arg("check").config_dir(&d).run(DEADLINE);
            assert_eq!(c.status(), 2, "{}", c.dump());
            assert!(
                c.stderr.contains(&format!("{file}:1:1: the file is empty")),
                "{file} {text:?}: {}",
                c.dump()
            );
            assert!(!c.stderr.contains("EOF while parsing"), "{}", c.dump());
        }
    }
}

#[test]
fn a_typo_inside_health_is_one_problem() {
    let d = Dir::new("healthtypo");
    d.daemons(
        r#"[{"name": "a", "command": ["/bin/true"],
  "health": {"intervall": 3}}]"#,
    );
    let c = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(c.status(), 2, "{}", c.dump());
    assert_config_error(
        &c.stderr,
        "daemons.json",
        Some(2),
        Some("a"),
        Some("health.intervall"),
    );
    assert!(c.stderr.contains("daemons.json:2:14:"), "{}", c.dump());
    assert!(c.stderr.contains("1 problem(s) found"), "{}", c.dump());
}
