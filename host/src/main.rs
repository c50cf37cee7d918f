fn main() -> std::process::ExitCode {
    sophon::cli::main()
}
