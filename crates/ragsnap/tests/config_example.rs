//! The shipped example config parses and its values are the built-in defaults.

#[test]
fn example_config_matches_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ragsnap.toml");
    let cfg = ragsnap::Config::load(&path).unwrap();
    let d = ragsnap::Config::default();
    assert_eq!(cfg.runtime, d.runtime);
    assert_eq!(cfg.ingest, d.ingest);
    assert_eq!(cfg.chunker, d.chunker);
    assert_eq!(cfg.boilerplate, d.boilerplate);
    assert_eq!(cfg.index, d.index);
    assert_eq!(cfg.query, d.query);
    assert_eq!(cfg.gates, d.gates);
    assert_eq!(cfg.cache, d.cache);
    assert_eq!(cfg.gc, d.gc);
    assert_eq!(cfg.source, d.source);
    assert_eq!(cfg.sources.len(), 1);
}
