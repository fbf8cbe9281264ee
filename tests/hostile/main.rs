//! Hostile servers and clients: the daemon stays up, bounded and classifying. `hostile_server` and
//! `hostile_lists` measure the daemon's peak RSS; scripts/test.sh runs those two again against a
//! release build (`cargo test --test hostile -- hostile_server:: hostile_lists::`).

#[path = "../common/client_support.rs"]
mod client_support;
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/hostile.rs"]
mod hostile;
#[path = "../common/tls.rs"]
mod tls;

mod hostile_http_surface;
mod hostile_labels;
mod hostile_lists;
mod hostile_redirects;
mod hostile_server;
mod hostile_server_requests;
mod hostile_session_ids;
mod hostile_terminal;
