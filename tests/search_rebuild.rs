//! Search while the index is rebuilt (after an upgrade or a tokenizer change): the index is
//! built newest first, a search finds recent matches through it and reads only a bounded
//! share of the older history directly, and says so (`partial`); paging on with `next` goes
//! further back; once the rebuild is done the answer is exact and equals a fully indexed
//! file's. Edits, deletes and purges meanwhile leave the index exact (`hallway check`).
//!
//! The servers here run with `Config::hold_index`: the writer indexes nothing by itself, and
//! the test runs its steps (`Server::index_steps`), so where the rebuild stands is known.

mod common;

use common::*;
use hallway::model::{ConvId, Seq, UserId};
use hallway::store::records::MessageRecord;
use hallway::store::search::{DIRECT_READS, INDEX_STEP, Page, Term};
use hallway::store::{Change, Store};
use serde_json::{Value, json};

const DAY: u64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    hallway::model::now_millis()
}

/// The history written into the file: `N` messages, the newest two index steps' worth
/// above `3 * DIRECT_READS` older ones, so that a search can read only a third of those.
const N: u64 = 3 * DIRECT_READS as u64 + 2 * INDEX_STEP as u64;

/// Message `i` (1 = oldest) of the history: a word of its own (`noteI`), and "zebra" in a
/// few: the newest, one inside the band two steps build, one just below it and the oldest
/// few.
fn text(i: u64) -> String {
    let zebra = [N, N - INDEX_STEP as u64 / 2, N - 2 * INDEX_STEP as u64 - DIRECT_READS as u64 / 2, 5];
    format!("filler{} note{i}{}", i % 50, if zebra.contains(&i) { " zebra" } else { "" })
}

/// A server whose #general holds the history (not indexed: the rebuild has not started),
/// alice signed in, and the seq of message 1 of the history. Messages are a second apart,
/// the newest written now.
async fn office(tweak: fn(&mut hallway::Config)) -> (TestServer, Client, u64, u64) {
    let mut server = TestServer::start_with(tweak).await;
    let alice = server.admin().await;
    let tab = alice.ws().await;
    let general = tab.room_id("general");
    let last = tab.hello_conversation(general).and_then(|c| c["last_seq"].as_u64());
    let first = last.unwrap_or_else(|| panic!("the hello names #general's last seq: {:?}", tab.hello_conversation(general))) + 1;
    tab.close().await;
    server.stop().await;
    {
        let store = Store::open(&server.data_file()).expect("open the stopped server's file");
        let now = now_ms();
        let changes = (1..=N)
            .map(|i| {
                let seq = first + i - 1;
                let record = MessageRecord::new(UserId(alice.id), text(i), now - (N - i) * 1000, seq);
                Change::PutMessage(ConvId(general), Seq(seq), record)
            })
            .collect();
        store.apply_now(changes).expect("write the history");
    }
    server.start_again().await;
    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    (server, alice, general, first)
}

fn held(config: &mut hallway::Config) {
    config.hold_index = true;
}

fn held_retaining_a_day(config: &mut hallway::Config) {
    config.hold_index = true;
    config.records = hallway::core::records::Policy::Retain(1);
}

async fn search(who: &Client, query: &str) -> Value {
    let (status, body) = who.get(&format!("/api/search?{query}")).await;
    assert_eq!(status, 200, "GET /api/search?{query}: {body}");
    body
}

fn seqs(body: &Value) -> Vec<u64> {
    body["results"].as_array().expect("results").iter().map(|m| m["seq"].as_u64().expect("seq")).collect()
}

/// Every result of a search, paging with `next` until an answer is exact; and how many of
/// the answers were partial.
async fn every_result(who: &Client, query: &str) -> (Vec<u64>, usize) {
    let (mut all, mut partial) = (Vec::new(), 0);
    let mut next: Option<String> = None;
    loop {
        let asked = match &next {
            Some(next) => format!("{query}&before={next}"),
            None => query.to_string(),
        };
        let body = search(who, &asked).await;
        all.extend(seqs(&body));
        if body["partial"] == json!(true) {
            partial += 1;
        }
        if body["more"] != json!(true) {
            assert!(body.get("partial").is_none(), "an answer that is not partial says nothing of it: {body}");
            return (all, partial);
        }
        next = Some(body["next"].as_str().unwrap_or_else(|| panic!("more comes with next: {body}")).to_string());
        assert!(partial < 100, "paging on with next must get further back each time");
    }
}

/// The seqs of #general's messages with `word`, newest first, in a copy of `data` indexed
/// in full by the command line's bulk indexing.
fn fully_indexed(data: &std::path::Path, conv: u64, word: &str) -> Vec<u64> {
    let copy = data.with_extension("full");
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(data, &copy).expect("copy the data file");
    let (store, key) = Store::open_with_key(&copy).expect("open the copy");
    store.index_everything().expect("index the copy");
    assert!(store.unindexed().expect("unindexed").is_empty());
    let page = Page { before: None, since: None, offset: 0, limit: 100 };
    let found = store.search(&key, &[ConvId(conv)], &[Term::Word(word.into())], &page).expect("search the copy");
    assert!(found.partial.is_none() && !found.more);
    found.results.iter().map(|(_, seq, _)| seq.0).collect()
}

fn check(server: &TestServer, when: &str) {
    let report = hallway::store::check::check_file(&server.data_file()).expect("check the data file");
    assert!(report.is_ok(), "{when}: hallway check finds {:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_during_a_rebuild_finds_recent_matches_and_says_it_is_partial() {
    let (mut server, alice, general, first) = office(held).await;
    let seq = |i: u64| first + i - 1;
    let zebras = [seq(N), seq(N - INDEX_STEP as u64 / 2), seq(N - 2 * INDEX_STEP as u64 - DIRECT_READS as u64 / 2), seq(5)];
    // Before the first step: the newest messages are read directly, the rest not yet.
    let body = search(&alice, "q=zebra").await;
    assert_eq!(seqs(&body), zebras[..2], "only the newest share of the history is read: {body}");
    assert_eq!(body["partial"], json!(true), "{body}");
    assert!(server.index_steps(2).await, "two steps leave most of the history to index");

    // The two steps indexed the newest messages; the search reads a share of the older ones.
    let body = search(&alice, "q=zebra").await;
    assert_eq!(seqs(&body), zebras[..3], "the recent matches, through the index and just below it: {body}");
    assert_eq!(body["partial"], json!(true), "the oldest messages were not searched: {body}");
    assert_eq!(body["more"], json!(true), "{body}");
    let after = body["searched_after"].as_u64().unwrap_or_else(|| panic!("how far back it searched: {body}"));
    let (status, page) = alice.get(&format!("/api/conversations/{general}/messages?before={}&limit=1", seq(5) + 1)).await;
    assert_eq!(status, 200, "{page}");
    assert!(after > page["messages"][0]["ts"].as_u64().expect("ts"), "message 5 was not searched yet: {body}");

    // Paging on from `next` searches further back, and the pages together are the whole answer.
    let (all, partial) = every_result(&alice, "q=zebra").await;
    assert_eq!(all, zebras, "every match once, newest first");
    assert!(partial >= 2, "the rest of the history took more than one more answer");
    let (none, partial) = every_result(&alice, "q=nosuchword").await;
    assert!(none.is_empty() && partial >= 2, "a word in no message: every answer partial until the last");

    // A message sent during the rebuild is found at once.
    let mut tab = alice.ws().await;
    let sent = tab.send_message(general, "zebra crossing").await["seq"].as_u64().expect("seq");
    assert_eq!(seqs(&search(&alice, "q=crossing").await), [sent]);

    // Done: the same search is exact, and what a fully indexed file answers.
    assert!(!server.index_steps(usize::MAX).await, "the rebuild finishes");
    let body = search(&alice, "q=zebra").await;
    assert!(body.get("partial").is_none(), "{body}");
    let oldest = search(&alice, "q=note5").await;
    assert_eq!((seqs(&oldest), oldest.get("partial")), (vec![seq(5)], None), "the oldest message through the index: {oldest}");
    tab.close().await;
    server.stop().await;
    let expected = fully_indexed(&server.data_file(), general, "zebra");
    assert_eq!(seqs(&body), expected, "{body}");
    assert_eq!(expected[0], sent);
    assert_eq!(expected[1..], zebras, "{expected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletes_and_purges_during_a_rebuild_leave_the_index_exact() {
    let (mut server, alice, general, first) = office(held_retaining_a_day).await;
    let seq = |i: u64| first + i - 1;
    assert!(server.index_steps(1).await);
    let mut tab = alice.ws().await;
    // In the band (the newest step), below it, and one below it that the purge takes.
    let edits = [
        (N - 10, "edited walrus in the band"),
        (N - INDEX_STEP as u64 - 10, "edited walrus below the band"),
        (20, "edited walrus soon purged"),
    ];
    for (i, text) in edits {
        tab.ack(json!({"type": "edit", "conv": general, "seq": seq(i), "text": text})).await;
    }
    for i in [N - 11, N - INDEX_STEP as u64 - 11] {
        tab.ack(json!({"type": "delete", "conv": general, "seq": seq(i)})).await;
    }
    // A message above the band, edited before its turn.
    let sent = tab.send_message(general, "fresh zebra").await["seq"].as_u64().expect("seq");
    tab.ack(json!({"type": "edit", "conv": general, "seq": sent, "text": "fresh walrus"})).await;
    tab.close().await;
    assert!(server.index_steps(1).await, "the band grows below the edits");
    server.stop().await;
    check(&server, "after edits and deletes during the rebuild");
    server.start_again().await;

    // A purge of the older half (a day after they were written): below the band and into it.
    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let kept_from = N - INDEX_STEP as u64 - INDEX_STEP as u64 / 2;
    let (status, page) = alice.get(&format!("/api/conversations/{general}/messages?before={}&limit=1", seq(kept_from) + 1)).await;
    assert_eq!(status, 200, "{page}");
    let cutoff = page["messages"][0]["ts"].as_u64().expect("ts");
    let purged = server.purge(cutoff + DAY).await;
    assert!(purged as u64 >= kept_from - 2, "the older messages went: {purged}");
    assert_eq!(
        seqs(&search(&alice, "q=walrus").await),
        [sent, seq(N - 10), seq(N - INDEX_STEP as u64 - 10)],
        "the current texts, newest first"
    );
    server.stop().await;
    check(&server, "after a purge during the rebuild");
    server.start_again().await;

    assert!(!server.index_steps(usize::MAX).await, "the rebuild finishes");
    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let body = search(&alice, "q=walrus").await;
    assert!(body.get("partial").is_none(), "{body}");
    assert_eq!(seqs(&search(&alice, "q=edited").await), seqs(&body)[1..]);
    for gone in ["note20".to_string(), format!("note{}", N - 11), format!("note{}", N - INDEX_STEP as u64 - 11)] {
        assert_eq!(seqs(&search(&alice, &format!("q={gone}")).await), Vec::<u64>::new(), "{gone} is purged or deleted");
    }
    server.stop().await;
    check(&server, "after the rebuild");
    assert_eq!(seqs(&body), fully_indexed(&server.data_file(), general, "walrus"));
}
