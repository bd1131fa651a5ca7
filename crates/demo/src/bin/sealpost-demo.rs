//! `sealpost-demo`: starts the local mail world of [`sealpost_demo::Stack`] with two
//! mailboxes (alice and bob @sealpost.test), writes what a client needs as JSON to the
//! file given as the first argument (or prints it), and runs until stdin closes or the
//! process is stopped. `scripts/run.sh --demo` uses it.

#![allow(clippy::print_stdout)]

use std::io::Read as _;

fn main() {
    let out = std::env::args_os().nth(1);
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let stack = match sealpost_demo::Stack::start(&["alice", "bob"], listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sealpost-demo: cannot start the demo servers: {e:#}");
            std::process::exit(1);
        }
    };
    let described = serde_json::to_string_pretty(&stack.describe()).unwrap_or_default();
    match out {
        Some(path) => {
            if let Err(e) = std::fs::write(&path, &described) {
                eprintln!(
                    "sealpost-demo: cannot write {}: {e}",
                    path.to_string_lossy()
                );
                std::process::exit(1);
            }
        }
        None => println!("{described}"),
    }
    eprintln!("sealpost-demo: running; close stdin or stop the process to end it");
    // Runs until stdin closes (the script that started it went away) or a signal.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
