//! `docs/protocol.md` stays true: each of its JSON examples is the snapshot of a message type,
//! byte for byte, and decodes; each snapshot is shown there. Each MessagePack snapshot
//! (`<name>.msgpack`) is the MessagePack form of the JSON snapshot beside it, and the hex dumps
//! that the page shows are such snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::fs;
use std::path::Path;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fenced blocks of `markdown` in the given language.
fn blocks(markdown: &str, language: &str) -> Vec<String> {
    let fence = format!("```{language}");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, open) if open == fence => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(block.trim().to_owned());
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn is_msgpack(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".msgpack.snap")
}

/// The content of a snapshot file (after its header).
fn snapshot_body(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let body = text.splitn(3, "---\n").nth(2).unwrap();
    body.trim().to_owned()
}

/// The bytes of a hex dump (`0000  84 a4 …  |..|` lines).
fn parse_hex_dump(dump: &str) -> Vec<u8> {
    dump.lines()
        .flat_map(|line| {
            let hex = line.get(6..53).unwrap_or_else(|| &line[6..]);
            hex.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_msgpack_snapshot_is_the_form_of_its_json_snapshot() {
    let dir = manifest_dir().join("tests/snapshots");
    let mut pairs = 0;
    for path in fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
        if !is_msgpack(&path) {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let json_path = dir.join(name.replace(".msgpack.snap", ".snap"));
        let json = snapshot_body(&json_path);
        let bytes = parse_hex_dump(&snapshot_body(&path));
        assert_eq!(
            cerebrum_protocol::msgpack_to_json(&bytes).unwrap(),
            json,
            "{name}"
        );
        assert_eq!(cerebrum_protocol::json_to_msgpack(&json).unwrap(), bytes);
        pairs += 1;
    }
    assert!(pairs >= 16, "MessagePack snapshots missing: {pairs}");
}

#[test]
fn every_hex_dump_in_the_docs_is_a_msgpack_snapshot() {
    let doc = fs::read_to_string(manifest_dir().join("../../docs/protocol.md")).unwrap();
    let dumps = blocks(&doc, "text");
    let dir = manifest_dir().join("tests/snapshots");
    let snapshots: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| is_msgpack(path))
        .map(|path| snapshot_body(&path))
        .collect();
    let shown = dumps.iter().filter(|d| d.starts_with("0000  ")).count();
    assert!(shown >= 1, "docs/protocol.md shows no MessagePack frame");
    for dump in dumps.iter().filter(|d| d.starts_with("0000  ")) {
        assert!(
            snapshots.contains(dump),
            "docs/protocol.md shows a hex dump that no snapshot pins: {dump}"
        );
    }
}

fn snapshot_frames() -> Vec<(String, String)> {
    let dir = manifest_dir().join("tests/snapshots");
    let mut frames: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "snap") && !is_msgpack(path))
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let frame = text.trim_end().lines().last().unwrap().to_owned();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                frame,
            )
        })
        .collect();
    frames.sort();
    frames
}

#[test]
fn every_snapshot_is_documented_and_every_example_is_a_snapshot() {
    let doc = fs::read_to_string(manifest_dir().join("../../docs/protocol.md")).unwrap();
    let blocks = blocks(&doc, "json");
    let frames = snapshot_frames();
    assert!(frames.len() >= 16, "snapshots missing: {}", frames.len());
    for (name, frame) in &frames {
        assert!(
            blocks.iter().any(|b| b == frame),
            "docs/protocol.md does not show the snapshot {name}: {frame}"
        );
    }
    for block in &blocks {
        assert!(
            frames.iter().any(|(_, f)| f == block),
            "docs/protocol.md shows a frame that no snapshot pins: {block}"
        );
        cerebrum_protocol::decode(block).unwrap();
    }
}
