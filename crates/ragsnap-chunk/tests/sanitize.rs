//! The sanitiser construct by construct: what is dropped, what is kept, and
//! how each kept construct is written as Markdown.

use ragsnap_chunk::{sanitize_html, IngestError, SanitizedDoc};

fn page(body: &str) -> String {
    format!("<!doctype html><html><head><title>T</title></head><body>{body}</body></html>")
}

fn sanitize(body: &str) -> SanitizedDoc {
    sanitize_html("t.html", page(body).as_bytes()).expect("content")
}

fn md(body: &str) -> String {
    sanitize(body).markdown
}

/// `body` must come out exactly as `KEEP` (the chrome around it dropped).
fn assert_only_keep(body: &str) {
    assert_eq!(md(body), "KEEP\n", "input: {body}");
}

#[test]
fn drops_non_content_elements() {
    for dropped in [
        "<script>var x = 1;</script>",
        "<style>p { color: red }</style>",
        "<noscript>Enable JavaScript</noscript>",
        "<template><p>tpl</p></template>",
        "<iframe src=x>frame</iframe>",
        "<svg><title>logo</title><text>svg text</text></svg>",
        "<canvas>canvas fallback</canvas>",
        "<form><p>form text</p><input value=v><button>Go</button></form>",
        "<select><option>opt</option></select>",
        "<textarea>typed</textarea>",
        "<button>Click</button>",
        "<!-- a comment -->",
        "<div hidden>hidden text</div>",
        "<div aria-hidden=\"true\">aria hidden</div>",
        "<div style=\"display: none\">display none</div>",
        "<div style=\"color:red;visibility:hidden\">invisible</div>",
    ] {
        assert_only_keep(&format!("<p>KEEP</p>{dropped}"));
    }
}

#[test]
fn drops_page_chrome_elements() {
    for dropped in [
        "<nav><a href=/>Home</a></nav>",
        "<footer><p>Footer text</p></footer>",
        "<aside>Related stuff</aside>",
        "<div role=navigation>role nav</div>",
        "<div role=banner>role banner</div>",
        "<div role=contentinfo>role contentinfo</div>",
        "<div role=search>role search</div>",
        "<div role=complementary>role complementary</div>",
        "<ol class=breadcrumb><li>Docs</li><li>Guide</li></ol>",
        "<div class=\"wy-breadcrumbs\">Docs » Guide</div>",
        "<a class=skip-link href=#main>Skip to content</a>",
        "<a href=#content>Skip to main content</a>",
        "<div id=cookie-banner><p>We use cookies.</p><button>Accept</button></div>",
        "<div class=notice><p>This site uses cookies to improve things.</p><button>OK</button></div>",
        "<a href=/a.html rel=prev>Older</a>",
        "<a href=/b.html>Next »</a>",
        "<a href=/b.html>« Previous</a>",
        "<div class=prev-next><a href=/a>Previous page</a><a href=/b>Next page</a></div>",
        "<p class=edit-link><a href=https://github.com/x>Edit this page on GitHub</a></p>",
        "<a href=https://gitlab.com/x>Edit this page</a>",
        "<p>© 2026 Tidewater Project</p>",
        "<div>Copyright 2026, Tidewater Inc. All rights reserved.</div>",
        "<div class=related role=navigation><a href=/genindex>Index</a></div>",
        "<div class=sphinxsidebar><h3>Quick search</h3></div>",
        "<div id=searchbox><input></div>",
        "<div class=footer>Created using Sphinx 7.2.</div>",
        "<p>Last updated on Jan 2, 2026</p>",
        "<p>Was this page helpful?</p>",
        "<span class=sr-only>Toggle navigation</span>",
    ] {
        assert_only_keep(&format!("<main><p>KEEP</p>{dropped}</main>"));
    }
}

#[test]
fn page_header_goes_but_a_header_in_main_stays() {
    assert_eq!(md("<header><a href=/>Site</a></header><p>KEEP</p>"), "KEEP\n");
    assert_eq!(md("<main><header><h1>Title</h1></header><p>Body</p></main>"), "# Title\n\nBody\n");
}

#[test]
fn sphinx_sidebar_headings_go_with_their_content() {
    let body = "<div class=body role=main><p>KEEP</p></div><div><h4>Previous topic</h4><p class=topless><a href=a.html>Install</a></p>\
                <h3>This page</h3><ul><li><a href=_sources/x.txt>Show Source</a></li></ul></div>";
    assert_eq!(md(body), "KEEP\n");
    // Without a main region, the rule still removes the heading and what it introduces.
    let body = "<p>KEEP</p><h4>Next topic</h4><p><a href=b.html>Usage</a></p>";
    assert_eq!(md(body), "KEEP\n");
}

#[test]
fn header_and_footer_inside_an_article_are_content() {
    let body = "<article><header><h1>Post</h1><p>By Ann</p></header><p>Body.</p><footer><p>Filed under tides.</p></footer></article>";
    assert_eq!(md(body), "# Post\n\nBy Ann\n\nBody.\n\nFiled under tides.\n");
}

#[test]
fn chrome_words_inside_content_stay() {
    let body = "<main>\
        <h2>Cookies</h2><p>We use cookies for session auth: send the <code>tw_session</code> cookie.</p>\
        <p>Use the next page token to fetch the next page. Previous page tokens are not supported.</p>\
        <p>Copyright notices in source files must be kept.</p>\
        <p>Skip to content filtering with <code>--raw</code>.</p>\
        <p>See <a href=steps.html>Next steps</a> and <a href=search.html>search syntax</a>.</p>\
        <h2 id=navigation-and-search>Navigation and search</h2><p>The sidebar lists every page.</p>\
        </main>";
    let out = md(body);
    for kept in [
        "We use cookies for session auth",
        "fetch the next page. Previous page tokens",
        "Copyright notices in source files",
        "Skip to content filtering",
        "Next steps",
        "search syntax",
        "## Navigation and search",
        "The sidebar lists every page.",
    ] {
        assert!(out.contains(kept), "{kept:?} missing from:\n{out}");
    }
}

#[test]
fn content_region_is_preferred() {
    let body = "<div class=layout><p>outside</p><main><p>KEEP</p></main></div>";
    assert_eq!(md(body), "KEEP\n");
    let body = "<div>outside</div><div class=body role=main><p>KEEP</p></div>";
    assert_eq!(md(body), "KEEP\n");
    let body = "<div>outside</div><article><p>KEEP</p></article>";
    assert_eq!(md(body), "KEEP\n");
    // Two articles: a listing page, so the body is used.
    let body = "<article><p>A</p></article><article><p>B</p></article>";
    assert_eq!(md(body), "A\n\nB\n");
    // An empty main falls back to the body.
    let body = "<main></main><div><p>KEEP</p></div>";
    assert_eq!(md(body), "KEEP\n");
}

#[test]
fn headings_paragraphs_and_inline() {
    let body = "<h1>Title</h1><p>Some <b>bold</b>, <em>em</em> and <code>x &lt; y</code>\n  text&nbsp;here.</p>\
                <h2>Sub<a class=headerlink href=#sub>¶</a></h2><h3>Three</h3><h6>Six</h6>\
                <p>An <img src=a.png alt=\"tide chart\"> image, a <a href=\"/x.html\">link</a>, a<br>break.</p>";
    assert_eq!(
        md(body),
        "# Title\n\nSome bold, em and `x < y` text here.\n\n## Sub\n\n### Three\n\n###### Six\n\nAn tide chart image, a link, a break.\n"
    );
    assert_eq!(sanitize(body).links, ["/x.html"]);
}

#[test]
fn text_that_looks_like_markdown_is_escaped() {
    let body = "<p># of users</p><p>1. not a list</p><p>- not a bullet</p><h2>Using C#</h2><p>`code` stays</p>";
    assert_eq!(md(body), "\\# of users\n\n1\\. not a list\n\n\\- not a bullet\n\n## Using C\\#\n\n`code` stays\n");
}

#[test]
fn nested_lists() {
    let body = "<ul><li>one<ul><li>one.a</li><li>one.b<ol><li>deep</li></ol></li></ul></li><li><p>two</p><p>more two</p></li></ul>\
                <ol start=3><li>three</li><li>four</li></ol>";
    assert_eq!(md(body), "- one\n  - one.a\n  - one.b\n    1. deep\n- two\n\n  more two\n\n3. three\n4. four\n");
}

#[test]
fn tables_become_pipe_tables() {
    let body = "<table><thead><tr><th>Key</th><th>Meaning</th></tr></thead>\
                <tbody><tr><td><code>a|b</code></td><td>pipe <b>inside</b></td></tr><tr><td>x</td></tr></tbody></table>";
    assert_eq!(md(body), "| Key | Meaning |\n| --- | --- |\n| `a\\|b` | pipe inside |\n| x |  |\n");
}

#[test]
fn wide_tables_become_records() {
    let head: String = (1..=7).map(|i| format!("<th>H{i}</th>")).collect();
    let row: String = (1..=7).map(|i| format!("<td>v{i}</td>")).collect();
    let body = format!("<table><tr>{head}</tr><tr>{row}</tr><tr>{row}</tr></table>");
    let record = "H1: v1\nH2: v2\nH3: v3\nH4: v4\nH5: v5\nH6: v6\nH7: v7";
    assert_eq!(md(&body), format!("{record}\n\n{record}\n"));
}

#[test]
fn layout_tables_are_unwrapped() {
    let body = "<table><tr><td><h2>Inside</h2><p>Para</p></td></tr></table>";
    assert_eq!(md(body), "## Inside\n\nPara\n");
}

#[test]
fn code_blocks_keep_language_and_whitespace() {
    let body = "<pre><code class=\"language-python\">def f():\n    return 1 &lt; 2\n</code></pre>\
                <div class=\"highlight-toml notranslate\"><div class=highlight><pre><span></span><span class=n>a</span> = 1\n</pre></div></div>\
                <pre>plain\n\n  indented</pre><pre><code>has ``` fence</code></pre>";
    assert_eq!(
        md(body),
        "```python\ndef f():\n    return 1 < 2\n```\n\n```toml\na = 1\n```\n\n```\nplain\n\n  indented\n```\n\n````\nhas ``` fence\n````\n"
    );
}

#[test]
fn blockquotes_and_definition_lists() {
    let body = "<blockquote><p>Quoted.</p><p>Second.</p></blockquote>\
                <dl><dt>Lease</dt><dd>Time a worker holds a job.</dd><dt>Ack</dt><dd><p>Done.</p></dd></dl>";
    assert_eq!(md(body), "> Quoted.\n>\n> Second.\n\n**Lease**\n: Time a worker holds a job.\n\n**Ack**\n: Done.\n");
}

#[test]
fn title_and_canonical() {
    let html = "<html><head><title> Queues — Tidewater docs </title><link rel=\"canonical\" href=\"https://d.example/q.html\"></head>\
                <body><main><h1>Queues</h1><p>Body.</p></main></body></html>";
    let doc = sanitize_html("q.html", html.as_bytes()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("Queues"));
    assert_eq!(doc.canonical_url.as_deref(), Some("https://d.example/q.html"));
    // No h1 to confirm the site suffix: the title is kept whole.
    let html = "<title>Queues | Tidewater</title><p>Body.</p>";
    assert_eq!(sanitize_html("q.html", html.as_bytes()).unwrap().title.as_deref(), Some("Queues | Tidewater"));
}

#[test]
fn whitespace_is_normalised_outside_pre() {
    let body = "<p>  a \n\t b\u{200B}c  </p><div>\n\n</div><p>d</p>";
    assert_eq!(md(body), "a bc\n\nd\n");
}

#[test]
fn chrome_only_pages_are_empty() {
    let html = page("<nav><a href=/>Home</a></nav><footer>© 2026 X</footer>");
    assert!(
        matches!(sanitize_html("e.html", html.as_bytes()), Err(IngestError::Empty { ref path }) if path == "e.html")
    );
}

#[test]
fn hidden_tab_panels_are_content() {
    let body =
        "<main><div role=tabpanel hidden><p>Linux steps</p></div><div role=tabpanel><p>macOS steps</p></div></main>";
    assert_eq!(md(body), "Linux steps\n\nmacOS steps\n");
}

#[test]
fn admonition_asides_are_content() {
    let body = "<main><p>KEEP</p><aside class=\"admonition note\"><p>Note body.</p></aside></main>";
    assert_eq!(md(body), "KEEP\n\nNote body.\n");
}
