//! A command trigger's component: a plain `wasi:cli` command. It prints its arguments and exits
//! with the status in `EXIT_STATUS` (0 when unset); `TRAP=1` makes it panic instead.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("command ran with {args:?}");
    if std::env::var("TRAP").as_deref() == Ok("1") {
        panic!("this command traps on purpose");
    }
    let status: i32 = std::env::var("EXIT_STATUS")
        .ok()
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    std::process::exit(status);
}
