//! scratch: print the sanitized markdown of a file
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let b = std::fs::read(&p).unwrap();
    match ragsnap_chunk::ingest(&p, &b, &Default::default()) {
        Ok(d) => { println!("TITLE {:?}\nWARN {:?}\nLINKS {:?}\n----\n{}", d.title, d.warnings, d.links, d.markdown); }
        Err(e) => println!("ERR {e}"),
    }
}
