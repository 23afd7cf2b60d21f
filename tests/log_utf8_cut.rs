//! §7: a line over `max_line_bytes` is cut at a UTF-8 character boundary,
//! through the built binary: every piece is whole UTF-8 (no U+FFFD where a
//! character was cut in two), the pieces join back to the line, and all but
//! the last are marked `"partial":true`.

mod common;

use common::*;

/// 7,000 `€` (3 bytes each): 21,000 bytes, cut at the default 16,384 bytes,
/// which falls inside a character.
#[test]
fn long_line_of_three_byte_characters_is_cut_between_characters() {
    let line = "\u{20ac}".repeat(7000);
    let d = Dir::new("utf8cut");
    let script = d.script(
        "euro.sh",
        "yes '\u{20ac}' | head -n 7000 | tr -d '\\n'; echo",
    );
    d.daemons(&format!(
        r#"[{{"name": "web", "command": [{}]}}]"#,
        js(&script)
    ));
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(
        std::str::from_utf8(&f.stdout).is_ok(),
        "output is not UTF-8"
    );
    let pieces: Vec<&serde_json::Value> = f
        .records
        .iter()
        .filter(|r| r["source"] == "web" && r["stream"] == "stdout")
        .collect();
    assert_eq!(pieces.len(), 2, "{}", f.dump());
    let mut joined = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        let text = piece["line"].as_str().unwrap_or_else(|| panic!("{piece}"));
        if let Some(at) = text.find('\u{FFFD}') {
            panic!("piece {i} of {} bytes has U+FFFD at byte {at}", text.len());
        }
        assert!(text.len() <= 16384, "piece {i} has {} bytes", text.len());
        let last = i + 1 == pieces.len();
        if last {
            assert!(piece.get("partial").is_none(), "last piece: {piece}");
        } else {
            assert_eq!(piece["partial"], true, "piece {i}: {piece}");
        }
        joined.push_str(text);
    }
    assert_eq!(joined.len(), line.len());
    assert!(joined == line, "the pieces do not join back to the line");
}
