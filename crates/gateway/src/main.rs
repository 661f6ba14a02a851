fn main() -> anyhow::Result<()> {
    ekai_gateway::cli::run()
}
