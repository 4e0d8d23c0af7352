//! Small hand-written sites imitating kinds of documentation generators
//! (`fixtures/generators/`): page template without `<nav>` or ARIA markup, callout
//! boxes of several shapes, a site name in every title, a contents page, short
//! sentences that repeat inside the content. The whole pipeline (ingest, corpus
//! pass, chunking) must keep the content and nothing of the template.

use std::path::{Path, PathBuf};

use ragsnap_chunk::{
    approx_token_count, chunk_doc, ingest_many, remove_boilerplate, BoilerplateConfig, BoilerplateReport, ChunkConfig,
    IngestLimits, SanitizedDoc,
};
use ragsnap_core::Chunk;

fn site_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/generators").join(name)
}

/// Every page of a fixture site through ingest and the corpus pass, and each page's chunks.
fn pipeline(name: &str) -> (Vec<SanitizedDoc>, BoilerplateReport, Vec<Vec<Chunk>>) {
    let dir = site_dir(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixture site")
        .map(|e| {
            let p = e.expect("entry").path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).expect("read"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{name}: {} pages", files.len());
    let mut docs: Vec<SanitizedDoc> =
        ingest_many(&files, &IngestLimits::default()).into_iter().map(|r| r.expect("page ingests")).collect();
    let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
    let chunks = docs.iter().map(|d| chunk_doc(d, None, &ChunkConfig::default(), &approx_token_count)).collect();
    (docs, report, chunks)
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Assertions shared by every site: no template text in any chunk, no header
/// element twice in one path, no callout title or site name in a header path.
fn check_common(name: &str, chunks: &[Vec<Chunk>], template: &[&str], site_name: Option<&str>) {
    let callout_titles = ["note", "tip", "warning", "caution", "see also"];
    let mut total = 0;
    for c in chunks.iter().flatten() {
        total += 1;
        for t in template {
            assert!(!c.text.contains(t), "{name}: chunk of {} holds template text {t:?}:\n{}", c.source_path, c.text);
        }
        let path: Vec<Vec<String>> = c.header_path.iter().map(|e| words(e)).collect();
        for i in 0..path.len() {
            for j in i + 1..path.len() {
                assert_ne!(path[i], path[j], "{name}: repeated header element in {:?}", c.header_path);
            }
            let joined = path[i].join(" ");
            assert!(!callout_titles.contains(&joined.as_str()), "{name}: callout title in {:?}", c.header_path);
            if let Some(site) = site_name {
                assert!(!c.header_path[i].contains(site), "{name}: site name in {:?}", c.header_path);
            }
        }
    }
    assert!(total > 0, "{name}: no chunks");
}

#[test]
fn navigation_tables_without_nav_markup_are_template() {
    let (docs, report, chunks) = pipeline("tablenav");
    // The header and footer tables carry per-page titles, so only their shape repeats.
    assert_eq!(report.template_blocks_removed, 12, "{report:?}");
    assert_eq!(report.template_shapes, 2, "{report:?}");
    let template = ["Prev", "Next", "Home", "| Up", "Getting Started", "Daily Use", "Planning"];
    check_common("tablenav", &chunks, &template, None);
    for (doc, cs) in docs.iter().zip(&chunks) {
        assert!(!doc.hub, "{} is not a hub", doc.source_path);
        let text: String = cs.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n");
        // Callouts stay inline, their titles as labels.
        assert!(text.contains("**Note:** "), "{}:\n{text}", doc.source_path);
        assert!(text.contains("**Tip:** Run the check command"), "{}:\n{text}", doc.source_path);
        // The repeated sentence in the content stays on every page.
        assert!(text.contains("Available since ledger release 4."), "{}", doc.source_path);
        // The page title and the equal first heading make one header element.
        let title = doc.title.as_deref().unwrap();
        assert!(cs.iter().all(|c| c.header_path[0] == title), "{:?}", cs[0].header_path);
        assert!(cs.iter().any(|c| c.header_path.len() == 2 && c.header_path[1].ends_with("How it works")));
    }
    let kept: Vec<&str> = report.kept_repeated.iter().map(|(t, _)| t.as_str()).collect();
    assert!(kept.contains(&"Available since ledger release 4."), "{kept:?}");
}

#[test]
fn masthead_trail_and_link_column_are_template_and_contents_is_a_hub() {
    let (docs, report, chunks) = pipeline("sidebar");
    let hubs: Vec<&str> = docs.iter().filter(|d| d.hub).map(|d| d.source_path.as_str()).collect();
    assert_eq!(hubs, ["contents.html"]);
    assert_eq!(report.hub_pages, ["contents.html"]);
    assert_eq!(report.title_affix.as_deref(), Some(" · Harbor Manual"));
    let template = ["Start page", "Topics", "Built on", "About this manual", "release 2.4", "Harbor Manual", "›"];
    let content: Vec<Vec<Chunk>> = docs.iter().zip(&chunks).filter(|(d, _)| !d.hub).map(|(_, c)| c.clone()).collect();
    check_common("sidebar", &content, &template, Some("Harbor Manual"));
    for (doc, cs) in docs.iter().zip(&chunks).filter(|(d, _)| !d.hub) {
        let text: String = cs.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n");
        for label in ["**Tip:** Ask the harbour staff", "**Warning:** Never step", "**Caution:** Harbour rules"] {
            assert!(text.contains(label), "{}: no {label:?} in\n{text}", doc.source_path);
        }
        for prose in ["Added in release 2.", "Related reading", "page for the next step."] {
            assert!(text.contains(prose), "{}: lost {prose:?}", doc.source_path);
        }
        assert!(!doc.title.as_deref().unwrap().contains("Harbor"), "{:?}", doc.title);
    }
    // A title that differs from its heading loses the site name at corpus level only.
    let mooring = docs.iter().position(|d| d.source_path == "mooring.html").unwrap();
    assert_eq!(docs[mooring].title.as_deref(), Some("Mooring lines"));
    assert_eq!(chunks[mooring][0].header_path[0], "Mooring lines and cleats");
}

#[test]
fn each_page_alone_still_drops_the_link_column() {
    // Per-page rule, no corpus: the column of links beside the text goes; the
    // trail and masthead need the corpus to be recognised.
    let bytes = std::fs::read(site_dir("sidebar").join("fuel.html")).unwrap();
    let doc = ragsnap_chunk::ingest("fuel.html", &bytes, &IngestLimits::default()).unwrap();
    assert!(!doc.markdown.contains("Booking a berth"), "{}", doc.markdown);
    assert!(doc.markdown.contains("The fuel pontoon is open"));
    assert!(doc.blocks.iter().any(|b| b.shape.is_some()), "{:?}", doc.blocks);
}

#[test]
fn a_long_column_of_links_after_a_short_article_is_navigation_not_a_hub() {
    let links: String =
        (0..120).map(|i| format!("<li><a href=\"/p{i}.html\">Harbour topic number {i}</a></li>")).collect();
    let page = format!(
        "<html><head><title>Slipways</title></head><body><div class=\"col-a\"><h1>Slipways</h1>\
         <p>A slipway lets a boat be hauled out of the water on a cradle. Book it two days ahead.</p>\
         <h2>Fees</h2><p>Hauling out costs the same as one night in a visitor berth, paid at the office.</p></div>\
         <div class=\"col-b\"><ul>{links}</ul></div></body></html>"
    );
    let doc = ragsnap_chunk::ingest("slipways.html", page.as_bytes(), &IngestLimits::default()).unwrap();
    assert!(!doc.hub);
    assert!(doc.markdown.contains("Book it two days ahead.") && doc.markdown.contains("## Fees"));
    assert!(!doc.markdown.contains("Harbour topic number"), "{}", doc.markdown);
}

/// The chunks' texts of one page, joined.
fn page_text(docs: &[SanitizedDoc], chunks: &[Vec<Chunk>], page: &str) -> String {
    let i = docs.iter().position(|d| d.source_path == page).unwrap_or_else(|| panic!("no page {page}"));
    chunks[i].iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n")
}

/// A chunk's text without its header-path line.
fn body(c: &Chunk) -> &str {
    c.text.split_once("\n\n").map_or("", |(_, b)| b)
}

#[test]
fn tiny_controls_beside_item_headings_and_code_are_template() {
    let (docs, report, chunks) = pipeline("apiref");
    // The per-member "src" links go on each page (three per page); the one beside the
    // page heading and the "Show docs" toggle label only recur across pages.
    assert!(report.template_blocks_removed >= 12, "{report:?}");
    let template = ["src", "[−]", "Show docs", "More details", "Try it", "Copy example", "Tidelib home"];
    check_common("apiref", &chunks, &template, Some("- Tidelib"));
    for (doc, cs) in docs.iter().zip(&chunks) {
        assert!(!cs.is_empty(), "{} has no chunks", doc.source_path);
        for c in cs {
            let words = body(c).split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count();
            assert!(words >= 3, "{}: a chunk without body text: {:?}", doc.source_path, c.text);
        }
    }
    let gauge = page_text(&docs, &chunks, "gauge.html");
    // The content around the controls stays: the description, the example, every member.
    for kept in [
        "A gauge measures the height of the water",
        "let x = tidelib::sensors::Gauge::default();",
        "fn level(&self)",
        "Returns the water level in metres, corrected for the staff offset.",
        "Lists the readings of the last tide cycle, oldest first.",
    ] {
        assert!(gauge.contains(kept), "{kept:?} lost:\n{gauge}");
    }
}

#[test]
fn each_api_page_alone_still_drops_repeated_member_controls() {
    // Without the corpus pass only what repeats on the page itself is known: the three
    // member "src" links and "More details" links go, the code toolbar link and the
    // logo link beside the text too.
    let bytes = std::fs::read(site_dir("apiref").join("buoy.html")).expect("read");
    let doc = ragsnap_chunk::sanitize_html("buoy.html", &bytes).expect("sanitise");
    for gone in ["More details", "Try it", "Copy example", "Tidelib home", "2.2 ·"] {
        assert!(!doc.markdown.contains(gone), "{gone:?} kept:\n{}", doc.markdown);
    }
    assert_eq!(doc.markdown.matches("src").count(), 1, "only the heading's link is left:\n{}", doc.markdown);
    assert!(doc.markdown.contains("Describes the light character, such as two flashes every ten seconds."));
}

#[test]
fn a_closing_line_on_every_page_goes_and_repeated_prose_inside_stays() {
    let (docs, report, chunks) = pipeline("manpages");
    for (doc, cs) in docs.iter().zip(&chunks) {
        let text: String = cs.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n");
        assert!(!text.contains("toolkit"), "{}: closing line kept:\n{text}", doc.source_path);
        assert!(!cs.iter().any(|c| c.header_path.iter().any(|h| h == "HARBOUR")), "{}", doc.source_path);
    }
    // "Added in version 2.4." sits at different places on five pages: content.
    let kept =
        docs.iter().zip(&chunks).filter(|(_, cs)| cs.iter().any(|c| c.text.contains("Added in version 2.4."))).count();
    assert_eq!(kept, 5, "{report:?}");
    assert!(report.kept_repeated.iter().any(|(t, n)| t == "Added in version 2.4." && *n == 5), "{report:?}");
    assert!(report.top.iter().any(|(t, _)| t.contains("toolkit")), "{report:?}");
}

#[test]
fn a_title_every_page_shares_gives_way_to_the_first_heading() {
    let (docs, report, chunks) = pipeline("manpages");
    assert_eq!(report.untitled_pages, 6, "{report:?}");
    check_common("manpages", &chunks, &["Harbour Manual"], Some("Harbour Manual"));
    let tug = docs.iter().position(|d| d.source_path == "tug.html").expect("tug");
    assert_eq!(docs[tug].title.as_deref(), Some("harbour-tug(1)"));
    for c in &chunks[tug] {
        assert_eq!(c.header_path[0], "harbour-tug(1)", "{:?}", c.header_path);
    }
}

#[test]
fn a_numbered_heading_under_the_same_words_is_not_repeated() {
    let (docs, _, chunks) = pipeline("manpages");
    let moor = docs.iter().position(|d| d.source_path == "moor.html").expect("moor");
    let springs = chunks[moor].iter().find(|c| c.text.contains("Springs stop the vessel")).expect("springs chunk");
    assert_eq!(springs.header_path, ["harbour-moor(1)", "Berth rules", "4.1 Spring lines"], "{springs:?}");
    let watch = chunks[moor].iter().find(|c| c.text.contains("keep a watch aboard")).expect("watch chunk");
    assert_eq!(watch.header_path.last().map(String::as_str), Some("Berth rules"), "{watch:?}");
}

#[test]
fn a_link_dense_page_header_is_a_banner_and_text_ahead_of_the_body_is_template() {
    let (docs, report, chunks) = pipeline("banner");
    // The slot left in the head, the header's site heading, mode button, version picker
    // and contents menu: nothing of them is in a chunk.
    let template = ["EXTRA_HEAD", "handbook", "Switch colours", "Other versions", "3.x", "Raw data", "►", "▼"];
    check_common("banner", &chunks, &template, Some("Quay Docs"));
    assert!(report.template_blocks_removed >= 7, "{report:?}");
    for (doc, cs) in docs.iter().zip(&chunks) {
        let text: String = cs.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n");
        assert!(!text.contains("Everything on one page"), "{}:\n{text}", doc.source_path);
        for c in cs {
            assert_ne!(body(c).trim(), "", "{}: empty chunk {:?}", doc.source_path, c.header_path);
        }
    }
    let tides = page_text(&docs, &chunks, "tides.html");
    for kept in ["The harbour publishes tide tables", "leave the inner basin dry"] {
        assert!(tides.contains(kept), "{kept:?} lost:\n{tides}");
    }
    let i = docs.iter().position(|d| d.source_path == "tides.html").expect("tides");
    assert!(chunks[i].iter().all(|c| c.header_path[0] == "Tides"), "{:?}", chunks[i]);
    // A header that holds the page's own title and a sentence is not a banner.
    let overview = page_text(&docs, &chunks, "overview.html");
    assert!(overview.contains("Quay overview"), "{overview}");
    assert!(overview.contains("What the quay offers visiting crews"), "{overview}");
    assert!(overview.contains("The quay is run by the harbour office"), "{overview}");
}

#[test]
fn text_ahead_of_the_body_on_one_page_alone_stays() {
    // Without the corpus a lone page keeps its leading text, marked for the corpus pass;
    // the banner header goes on the page itself.
    let bytes = std::fs::read(site_dir("banner").join("fuel.html")).expect("read");
    let doc = ragsnap_chunk::sanitize_html("fuel.html", &bytes).expect("sanitise");
    assert!(doc.markdown.contains("EXTRA\\_HEAD") || doc.markdown.contains("EXTRA_HEAD"), "{}", doc.markdown);
    assert!(doc.blocks.iter().any(|b| b.shape.is_some() && doc.markdown[b.range.0..b.range.1].contains("HEAD")));
    for gone in ["handbook", "Other versions", "Raw data"] {
        assert!(!doc.markdown.contains(gone), "{gone:?} kept:\n{}", doc.markdown);
    }
    assert!(doc.markdown.contains("The fuel dock sells diesel"), "{}", doc.markdown);
}

#[test]
fn member_controls_seen_once_or_twice_a_page_go_where_they_recur_across_pages() {
    let (docs, _report, chunks) = pipeline("sparse");
    // Two member controls a page (below the per-page rule), one with a version note whose
    // link changes from page to page, the heading's controls, and a lone "Full text" link.
    let template = ["src", "pending", "[−]", "Full text", "const:"];
    check_common("sparse", &chunks, &template, None);
    for (doc, cs) in docs.iter().zip(&chunks) {
        for c in cs {
            let words = body(c).split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count();
            assert!(words >= 3, "{}: a chunk without body text: {:?}", doc.source_path, c.text);
        }
    }
    let winch = page_text(&docs, &chunks, "winch.html");
    for kept in [
        "A winch winds a line around a drum",
        "fn ratio(&self)",
        "Returns the gear ratio of the winch.",
        "fn brake(&mut self)",
        "Sets the winch brake so the drum cannot turn back.",
        "Writes a one-line description of the winch.",
    ] {
        assert!(winch.contains(kept), "{kept:?} lost:\n{winch}");
    }
}

#[test]
fn a_member_control_on_a_few_pages_of_a_large_site_is_template() {
    // 24 pages, five with a member control (about a fifth: below the share a menu needs).
    let mut files = Vec::new();
    for i in 0..24 {
        let member = if i % 5 == 0 {
            format!(
                "<h2>Members</h2><section class=\"m\"><span class=\"edge\"><a class=\"code\" href=\"s{i}.html#4\">src</a></span>\
                 <h3>fn depth{i}(&amp;self)</h3></section><p>Returns the depth at berth {i} in metres at low water.</p>"
            )
        } else {
            String::new()
        };
        let page = format!(
            "<html><head><title>Berth {i}</title></head><body><main><h1>Berth {i}</h1>\
             <p>Berth {i} lies along the east wall and takes boats up to {i} metres long.</p>{member}</main></body></html>"
        );
        files.push((format!("b{i:02}.html"), page.into_bytes()));
    }
    let mut docs: Vec<SanitizedDoc> =
        ingest_many(&files, &IngestLimits::default()).into_iter().map(|r| r.expect("page ingests")).collect();
    remove_boilerplate(&mut docs, &BoilerplateConfig::default());
    let with_member: Vec<&SanitizedDoc> = docs.iter().filter(|d| d.markdown.contains("fn depth")).collect();
    assert_eq!(with_member.len(), 5);
    for d in with_member {
        assert!(!d.markdown.contains("src"), "{}:\n{}", d.source_path, d.markdown);
        assert!(d.markdown.contains("in metres at low water."), "{}", d.markdown);
    }
}
