//! The load generator behind `cerebrum bench`: scenarios that measure a server speaking the
//! bench subset of the cerebrum protocol (ping/pong, subscribe/subscribed, channel
//! publications), on loopback only.
//!
//! | scenario | what it measures |
//! |---|---|
//! | [`conns`](Scenario::Conns) | N connections subscribed to K channels: connect rate, server RSS per connection |
//! | [`fanout`](Scenario::Fanout) | N subscribers of one channel, one publisher at R msg/s: deliveries/s, losses, latency percentiles, server CPU per 1 000 deliveries |
//! | [`rooms`](Scenario::Rooms) | rooms of M clients, each publishing r msg/s: latency percentiles, server CPU per 1 000 deliveries |
//! | [`ping`](Scenario::Ping) | round-trip percentiles of pings under N connections |
//! | [`slow`](Scenario::Slow) | keyed publications, readers that keep up and one at a fraction of the rate: whether it is closed 4008, how old what it reads is, how soon it has the latest value of every key (conflation, `--conflate latest=key`) |
//!
//! Latency percentiles come from an HDR histogram ([`LatencyRecorder`], bounded memory), each
//! frame measured from its intended send time (the start plus `n / rate`), not the time it
//! left: a sender held up cannot hide the wait (coordinated omission).
//!
//! Every run is bounded in time and count. Client sockets are spread over several loopback
//! source addresses (127.0.0.2, 127.0.0.3, …) so large runs do not exhaust ephemeral ports, and
//! the open-files limit is raised as far as the hard limit allows. Server figures (RSS, CPU
//! seconds) are read from `/proc/PID/…` when the server's pid is given.
//!
//! Without the default feature `load`, only [`report`] is built (the types that read a
//! report's JSON line back, for tools such as `cargo xtask bench`).
//!
//! ```no_run
//! use cerebrum_bench::{run, FanoutOptions, Scenario, Target};
//!
//! # async fn demo() -> Result<(), cerebrum_bench::BenchError> {
//! let target = Target::new("ws://127.0.0.1:8080/ws")?;
//! let report = run(&target, &Scenario::Fanout(FanoutOptions::default())).await?;
//! println!("{}", report.table());
//! println!("{}", report.json_line());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "load")]
mod error;
mod latency;
#[cfg(feature = "load")]
mod link;
#[cfg(feature = "load")]
mod process;
pub mod report;
#[cfg(feature = "load")]
mod scenario;
#[cfg(feature = "load")]
mod storm;
#[cfg(feature = "load")]
mod target;

/// The frames' encoding of the fan-out and rooms scenarios (JSON text or MessagePack).
#[cfg(feature = "load")]
pub use cerebrum_protocol::Encoding;
#[cfg(feature = "load")]
pub use error::BenchError;
#[cfg(feature = "load")]
pub use latency::LatencyRecorder;
pub use latency::LatencySummary;
#[cfg(feature = "load")]
pub use process::{ProcessSample, raise_open_files_limit};
pub use report::{Report, Value};
#[cfg(feature = "load")]
pub use scenario::{
    ConnsOptions, FanoutOptions, PingOptions, RoomsOptions, SLOW_CHANNEL, Scenario, SlowOptions,
    run,
};
#[cfg(feature = "load")]
pub use storm::{CommandRestarter, Restarter, StormOptions, run_storm};
#[cfg(feature = "load")]
pub use target::Target;
