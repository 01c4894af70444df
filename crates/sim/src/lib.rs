//! Deterministic simulation of cerebrum-realtime: many [`cerebrum_core::ClientCore`]s against
//! several server cores ([`cerebrum_server_core`]) over a simulated network, a simulated
//! remote broker and a simulated store — all from one seed, with faults: delays and link cuts
//! (each direction of a link stays ordered, as TCP is), node crash and restart, broker
//! outages, store errors, clock jumps, and small outbound queues (slow consumers).
//!
//! The simulation plays every owner: the client drivers, the server's connection tasks (which
//! carry each session's effects out in order and feed the answers back, and read no frame while
//! the session waits), the server's background tasks (presence expiry and refresh, resync after
//! a broker outage) and an operator who sends notifications. After every step it checks:
//!
//! 1. **exactly once** — a message sent with `ack: true` takes effect (is appended to its
//!    channel) at most once, and is acknowledged only after it took effect;
//! 2. **in order, no gap** — on every connection, the publications of an explicitly subscribed
//!    channel arrive once each, in offset order, continuing from the `subscribed` frame (from
//!    the resume position when it says `recovered: true`);
//! 3. **presence converges** — at the end, with every fault healed and the presence TTL
//!    passed, each study session's presence is exactly the users the live nodes have in it;
//! 4. **notifications** — one whose `ack` the server acknowledged is never delivered again,
//!    and every unacknowledged one reaches the user's next connection. Pages are 3 long here,
//!    so that a run pages, and a user's connections (on one node or several) acknowledge the
//!    same pages.
//!
//! ```
//! use cerebrum_sim::{run, SimConfig};
//! let report = run(7, &SimConfig::default()).expect("seed 7 keeps every invariant");
//! assert!(report.frames > 0);
//! ```
//!
//! A failing seed is reported with the command that replays it (`cargo xtask sim --seed N`).
#![forbid(unsafe_code)]

mod broker;
mod store;
mod world;

pub use world::{Failure, Plant, Report, SimConfig, run};
