use sophon::runtime::{PluginGrants, PluginSource, Runtime, RuntimeConfig, HostServices};
use std::time::Duration;

#[tokio::test]
async fn echo_round_trip() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let source = PluginSource::from_file(&sophon_tests::fixture("echo")).unwrap();
    let plugin = runtime.load(&source, &PluginGrants::default()).unwrap();
    let mut instance = plugin.strategy(HostServices::default()).await.unwrap();
    let outcome = instance.run("echo:hello", Duration::from_secs(10)).await.unwrap();
    assert_eq!(outcome.summary, "hello");
}
