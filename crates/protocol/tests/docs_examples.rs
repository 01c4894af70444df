//! `docs/protocol.md` stays true: each of its JSON examples is the snapshot of a message type,
//! byte for byte, and decodes; each snapshot is shown there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::fs;
use std::path::Path;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```json") => current = Some(String::new()),
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

fn snapshot_frames() -> Vec<(String, String)> {
    let dir = manifest_dir().join("tests/snapshots");
    let mut frames: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "snap"))
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
    let blocks = json_blocks(&doc);
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
