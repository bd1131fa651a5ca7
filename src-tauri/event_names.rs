// The events the app sends its windows, by name (see `events.rs` for their payloads).
// Included by `events.rs` and by `build.rs`, which lets the isolation page pass only these.
[
    "mail-progress",
    "mail-changed",
    "outbox",
    "locked",
    "message-changed",
]
