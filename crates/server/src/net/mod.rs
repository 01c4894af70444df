//! The network glue: the accept loop, TLS, the HTTP routes, and one task per WebSocket that
//! drives its session.

pub(crate) mod acceptor;
pub(crate) mod conn;
pub(crate) mod deflate;
pub(crate) mod http;
pub(crate) mod tls;
pub(crate) mod upgrade;
