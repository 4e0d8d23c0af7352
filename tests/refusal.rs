//! Refusals you can trust (issue 17), end to end with the real model: the fixture store records
//! its calibrated floors in the manifest, a question about an identifier the site does not have
//! is refused and says why, an answerable question is answered with a readable confidence.

use ragsnap::{Answer, QueryOptions, Searcher, Snapshot, Store};
use ragsnap_tests::*;
use std::sync::Arc;

fn searcher() -> Searcher {
    let store = Store::open_reader(fixture_store()).unwrap();
    let snap = Arc::new(Snapshot::open(&store, &store.head().unwrap().id).unwrap());
    Searcher::new(snap, embedder()).unwrap()
}

#[test]
fn the_manifest_records_probe_distributions_and_the_chosen_floors() {
    let s = searcher();
    let m = s.snapshot().manifest();
    let cal = m.calibration.refusal.as_ref().expect("a new snapshot carries calibration.refusal");
    eprintln!("{cal:#?}");
    assert!(cal.check().is_ok());
    assert!(cal.in_corpus.probes >= 20, "{} in-corpus probes", cal.in_corpus.probes);
    assert_eq!(cal.off_topic.probes as usize, ragsnap::calibrate::OFF_TOPIC_PROBES.len());
    assert!(cal.absent_identifiers.probes >= 40);
    for p in [&cal.in_corpus, &cal.off_topic, &cal.absent_identifiers] {
        assert_eq!(p.top1_cosine.len(), 21);
        assert_eq!(p.top1_coverage.len(), 21);
    }
    // Pseudo-questions from the site score above the generic off-topic questions.
    assert!(cal.in_corpus.top1_cosine[10] > cal.off_topic.top1_cosine[20]);
    // The dense floor keeps the stated share of in-corpus probes; the identifier floor is not
    // below it.
    assert!(cal.dense_floor <= cal.in_corpus.top1_cosine[1] + 1e-6, "{cal:?}");
    assert!(cal.identifier_floor >= cal.dense_floor);
    // The JSON on disk names the fields docs/format.md documents.
    let dir = fixture_store().join("snapshots").join(&m.snapshot_id);
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let r = &raw["calibration"]["refusal"];
    for key in ["version", "keep_share", "dense_floor", "identifier_floor", "lexical_floor"] {
        assert!(r[key].is_number(), "calibration.refusal.{key} missing: {r}");
    }
    assert_eq!(r["in_corpus"]["top1_cosine"].as_array().unwrap().len(), 21);
    // Queries use the snapshot's floors unless the caller sets one.
    let floors = s.floors(&QueryOptions::default());
    assert_eq!((floors.dense, floors.source), (cal.dense_floor, "snapshot"));
    let own = s.floors(&QueryOptions { floor: Some(0.5), ..Default::default() });
    assert_eq!((own.dense, own.source), (0.5, "caller"));
}

#[test]
fn an_absent_identifier_is_refused_and_a_fixture_question_answered() {
    let s = searcher();
    let lex = s.snapshot().lexical().expect("lexical index");
    // Generated from the site's own vocabulary, checked absent from the index: it shares its
    // sub-words ("queue", "retry", "policy") with many chunks but names nothing the site has.
    let ident = ["queue_retry_policy", "retry_queue_drain", "queue_lease_backoff"]
        .into_iter()
        .find(|t| lex.doc_freq(t) == 0)
        .expect("one of them is absent");
    for q in [format!("tidewater.{ident}()"), format!("what does {ident} return?"), ident.to_string()] {
        let r = s.query(&q, &QueryOptions::default()).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        match &r.answer {
            Answer::NoConfidentMatch { .. } => {
                let why = r.refusal.as_ref().expect("a refusal says why");
                assert!(why.shortfall.contains(&"identifier"), "{why:?}");
                assert_eq!(why.missing_identifiers.len(), 1, "{why:?}");
                assert!(why.best_confidence < 0.5);
                assert!(json["refusal"]["shortfall"].is_array(), "{json}");
                assert!(r.identifier_floor.is_some_and(|f| f > r.floor), "{r:?}");
            }
            Answer::Hits { hits } => panic!("{q:?} answered: {:?} at {:.3}", hits[0].source_path, hits[0].score),
        }
    }
    // The same query without floors does find chunks: the refusal is the floor's doing.
    let open = QueryOptions { floor: Some(-1.0), lexical_floor: Some(0.0), ..Default::default() };
    assert!(matches!(s.query(ident, &open).unwrap().answer, Answer::Hits { .. }));

    // An answerable fixture question: answered, each hit with its confidence and reasons.
    let q = &questions()[0];
    let r = s.query(&q.question, &QueryOptions::default()).unwrap();
    assert!(r.refusal.is_none());
    let Answer::Hits { hits } = &r.answer else { panic!("{:?} refused: {:?}", q.question, r.refusal) };
    assert_eq!(hits[0].source_path, q.expected_source.as_deref().unwrap());
    for h in hits {
        assert!((0.5..=1.0).contains(&h.confidence), "{h:?}");
        let margin = h.signals.cosine_margin.unwrap();
        assert!(margin >= 0.0 || h.signals.supported_by.contains(&"lexical"), "{h:?}");
        assert!(!h.signals.matched_terms.is_empty());
    }
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["hits"][0]["confidence"].is_number(), "{json}");
    assert_eq!(json["floor_source"], "snapshot");
}

#[test]
fn an_identifier_the_site_documents_is_answered_with_an_exact_match() {
    let s = searcher();
    let lex = s.snapshot().lexical().unwrap();
    assert!(lex.doc_freq("max_attempts") > 0);
    let r = s.query("max_attempts", &QueryOptions::default()).unwrap();
    let Answer::Hits { hits } = &r.answer else { panic!("refused: {:?}", r.refusal) };
    assert_eq!(r.identifiers, ["max_attempts"]);
    assert_eq!(hits[0].signals.exact_matches, ["max_attempts"]);
    assert!(hits[0].signals.supported_by.contains(&"lexical"), "{:?}", hits[0].signals);
}
