//! `gwctl`: see the library docs.

use std::io::{self, Write};

fn main() {
    let args: Vec<String> = match std::env::args_os().skip(1).map(|a| a.into_string()).collect() {
        Ok(args) => args,
        Err(bad) => {
            eprintln!("gwctl: argument {bad:?} is not valid UTF-8");
            std::process::exit(2);
        }
    };
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut err = io::stderr().lock();
    let code = gwctl::run(&args, &mut gwctl::Io { input: &mut input, out: &mut out, err: &mut err });
    // A closed stdout (`gwctl -L | head`) is not an error worth a panic.
    let _ = out.flush();
    std::process::exit(code);
}
