fn main() {
    std::process::exit(spindle::cli::main());
}
