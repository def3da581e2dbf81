//! Keyword search (`GET /api/search`): what people find, in which order, page by page, and
//! above all what they must never find (other people's DMs and private rooms).
//!
//! Every message is posted over the WebSocket and its `ack` awaited before searching: the ack
//! comes after the durable commit, so the message is searchable by then.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{Value, json};

fn seq_of(ack: &Value) -> u64 {
    ack["seq"].as_u64().expect("ack carries seq")
}

fn conv_of(ack: &Value) -> u64 {
    ack["conv"].as_u64().unwrap_or_else(|| panic!("the ack should carry the conversation id: {ack}"))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as u64
}

/// A fresh server with alice (its admin) and bob, alice's tab open, and the id of #general.
struct Office {
    server: TestServer,
    alice: Client,
    bob: Client,
    alice_tab: Ws,
    general: u64,
}

async fn office() -> Office {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let alice_tab = alice.ws().await;
    let general = alice_tab.room_id("general");
    Office { server, alice, bob, alice_tab, general }
}

/// Posts a message, waits for its ack (the commit), then lets the clock pass the message's
/// millisecond, so the next message is strictly newer by `ts` and "newest first" has exactly
/// one right answer.
async fn say(tab: &mut Ws, conv: u64, text: &str) -> Value {
    let ack = tab.send_message(conv, text).await;
    let ts = ack["ts"].as_u64().unwrap_or_else(|| panic!("the ack of a send should carry the message's ts: {ack}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while now_ms() <= ts && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    ack
}

/// Percent-encodes a query parameter value.
fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn search_path(params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    format!("/api/search?{}", query.join("&"))
}

/// `GET /api/search` as `who`, whatever the answer.
async fn search_raw(who: &Client, params: &[(&str, &str)]) -> (u16, Value) {
    who.get(&search_path(params)).await
}

/// `GET /api/search` as `who`, asserting a 200 with `results` and `more`.
async fn search(who: &Client, params: &[(&str, &str)]) -> Value {
    let path = search_path(params);
    let (status, body) = who.get(&path).await;
    assert_eq!(status, 200, "{} searched ({path}) and was refused: {body}", who.name);
    assert!(body["results"].is_array(), "the answer to {path} should carry a `results` list: {body}");
    assert!(body["more"].is_boolean(), "the answer to {path} should say whether `more` results follow: {body}");
    body
}

/// The texts of the results, in the order given.
fn found(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("a search answer should carry `results`: {body}"))
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The texts `who` finds with these parameters (asserting 200).
async fn texts_found(who: &Client, params: &[(&str, &str)]) -> Vec<String> {
    found(&search(who, params).await)
}

/// (conv, seq) of each result, in the order given.
fn ids(body: &Value) -> Vec<(u64, u64)> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("a search answer should carry `results`: {body}"))
        .iter()
        .map(|m| (m["conv"].as_u64().expect("result carries conv"), m["seq"].as_u64().expect("result carries seq")))
        .collect()
}

async fn expect_status(who: &Client, params: &[(&str, &str)], status: u16, code: &str, why: &str) {
    let path = search_path(params);
    let (got, body) = who.get(&path).await;
    assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{why}: {} asked {path} and got {got} {body}", who.name);
}

async fn expect_bad_request(who: &Client, params: &[(&str, &str)], why: &str) {
    expect_status(who, params, 400, "bad_request", why).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_finds_the_message_whatever_its_case() {
    let Office { server: _server, alice, bob, mut alice_tab, general } = office().await;

    let ack = say(&mut alice_tab, general, "The PRINTER on floor 2 is jammed").await;
    say(&mut alice_tab, general, "coffee machine is fixed").await;
    say(&mut alice_tab, general, "Grüße aus MÜNCHEN").await;
    say(&mut alice_tab, general, "ticket 4711 is closed").await;

    for q in ["printer", "Printer", "PRINTER", "pRiNtEr"] {
        assert_eq!(
            texts_found(&bob, &[("q", q)]).await,
            ["The PRINTER on floor 2 is jammed"],
            "bob searched for {q:?} and should find exactly the printer message, whatever the case"
        );
    }

    let body = search(&bob, &[("q", "printer")]).await;
    assert_eq!(body["more"], false, "one match, nothing more to page to: {body}");
    let m = &body["results"][0];
    assert_eq!(
        (m["conv"].as_u64(), m["seq"].as_u64()),
        (Some(general), Some(seq_of(&ack))),
        "a hit must lead to the message: {m}"
    );
    assert_eq!(m["author"], alice.id, "the hit should show who wrote it: {m}");
    assert_eq!(m["ts"], ack["ts"], "the hit should show when it was written: {m}");
    assert_eq!(m["deleted"], false, "{m}");
    assert!(m["edited_ts"].is_null(), "an unedited hit is not shown as edited: {m}");
    assert!(m["mentions"].is_array(), "a hit is a whole Message, with its mentions: {m}");
    assert_eq!(m["client_id"], ack["client_id"], "a hit is a whole Message, with its client_id: {m}");

    assert_eq!(
        texts_found(&bob, &[("q", "münchen")]).await,
        ["Grüße aus MÜNCHEN"],
        "letters beyond ASCII are letters too, and compared without case"
    );
    assert_eq!(texts_found(&bob, &[("q", "grüße")]).await, ["Grüße aus MÜNCHEN"], "a word with umlauts and ß is found");
    assert_eq!(
        texts_found(&bob, &[("q", "4711")]).await,
        ["ticket 4711 is closed"],
        "digits form words: a ticket number is found"
    );
    assert_eq!(texts_found(&bob, &[("q", "stapler")]).await, Vec::<String>::new(), "a word nobody wrote finds nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_word_of_the_query_must_occur_in_the_message() {
    let Office { server: _server, alice: _, bob, mut alice_tab, general } = office().await;

    say(&mut alice_tab, general, "Printer is out of toner again").await;
    say(&mut alice_tab, general, "the printer jammed on floor 3").await;
    say(&mut alice_tab, general, "toner delivery is due tomorrow").await;
    say(&mut alice_tab, general, "ordered toner for the printer").await;

    let both = ["ordered toner for the printer", "Printer is out of toner again"];
    for q in ["printer toner", "toner printer", "PRINTER   Toner", "printer,toner", "Printer's toner"] {
        assert_eq!(
            texts_found(&bob, &[("q", q)]).await,
            both,
            "q={q:?} should find the messages with both printer and toner (and only them), newest first"
        );
    }
    assert_eq!(
        texts_found(&bob, &[("q", "printer")]).await,
        ["ordered toner for the printer", "the printer jammed on floor 3", "Printer is out of toner again"],
        "one word finds every message that has it"
    );
    let body = search(&bob, &[("q", "printer toner jammed")]).await;
    assert_eq!(found(&body), Vec::<String>::new(), "no message has all three words, so none is found: {body}");
    assert_eq!(body["more"], false, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn words_match_whole_not_as_prefixes() {
    let Office { server: _server, alice: _, bob, mut alice_tab, general } = office().await;

    say(&mut alice_tab, general, "the printer jammed again").await;
    say(&mut alice_tab, general, "jam session on friday").await;
    say(&mut alice_tab, general, "stuck in a traffic jam!").await;
    say(&mut alice_tab, general, "strawberry-jam sandwiches in the kitchen").await;

    assert_eq!(
        texts_found(&bob, &[("q", "jam")]).await,
        ["strawberry-jam sandwiches in the kitchen", "stuck in a traffic jam!", "jam session on friday"],
        "q=jam finds the word jam (punctuation around it does not matter) but not \"jammed\""
    );
    assert_eq!(texts_found(&bob, &[("q", "jammed")]).await, ["the printer jammed again"], "the whole word finds it");
    for q in ["jamm", "ammed", "print", "strawberryjam", "sandwich"] {
        assert_eq!(
            texts_found(&bob, &[("q", q)]).await,
            Vec::<String>::new(),
            "q={q:?} is only part of a word and must not match"
        );
    }

    // A word is 2 or more letters or digits; a run longer than 64 counts by its first 64, so a
    // long identifier pasted whole is found.
    let word64 = "x".repeat(63) + "1";
    let run70 = "y".repeat(69) + "2";
    say(&mut alice_tab, general, &format!("build id {word64} passed")).await;
    say(&mut alice_tab, general, &format!("hash {run70} failed")).await;
    assert_eq!(texts_found(&bob, &[("q", &word64)]).await, [format!("build id {word64} passed")], "a 64-character word is found");
    assert_eq!(
        texts_found(&bob, &[("q", &run70)]).await,
        [format!("hash {run70} failed")],
        "a 70-character identifier pasted whole is found"
    );
    assert_eq!(
        texts_found(&bob, &[("q", &format!("{run70} passed"))]).await,
        Vec::<String>::new(),
        "and every other word must still occur"
    );
}

/// Chinese and Japanese have no spaces between words: a search for a word of theirs finds
/// the messages where those characters stand together, in any sentence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_and_japanese_words_are_found_inside_sentences() {
    let Office { server: _server, alice: _, bob, mut alice_tab, general } = office().await;

    say(&mut alice_tab, general, "明日の会議は東京で行います").await;
    say(&mut alice_tab, general, "京都と東の京").await;
    say(&mut alice_tab, general, "我们明天在北京开会").await;
    say(&mut alice_tab, general, "Hallway東京 release").await;

    assert_eq!(
        texts_found(&bob, &[("q", "東京")]).await,
        ["Hallway東京 release", "明日の会議は東京で行います"],
        "東京 is found inside a Japanese sentence and next to Latin letters, not where 東 and 京 stand apart"
    );
    assert_eq!(texts_found(&bob, &[("q", "会議")]).await, ["明日の会議は東京で行います"]);
    assert_eq!(texts_found(&bob, &[("q", "北京 开会")]).await, ["我们明天在北京开会"], "two Chinese words");
    assert_eq!(texts_found(&bob, &[("q", "hallway")]).await, ["Hallway東京 release"], "the Latin word beside them too");
    assert_eq!(texts_found(&bob, &[("q", "大阪")]).await, Vec::<String>::new());

    // A pasted sentence of 24 characters is one search, not more words than allowed.
    let sentence = "来週の月曜日に新しいプリンターが届く予定です";
    say(&mut alice_tab, general, &format!("お知らせ：{sentence}。")).await;
    assert_eq!(texts_found(&bob, &[("q", sentence)]).await, [format!("お知らせ：{sentence}。")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_come_newest_first() {
    let Office { server: _server, alice: _, bob, mut alice_tab, general } = office().await;
    let mut bob_tab = bob.ws().await;

    let mut acks = Vec::new();
    acks.push(say(&mut alice_tab, general, "standup at 9").await);
    acks.push(say(&mut bob_tab, general, "standup moved to 10").await);
    say(&mut alice_tab, general, "unrelated chatter").await;
    acks.push(say(&mut alice_tab, general, "standup cancelled today").await);

    let body = search(&bob, &[("q", "standup")]).await;
    assert_eq!(
        found(&body),
        ["standup cancelled today", "standup moved to 10", "standup at 9"],
        "the newest standup message should come first: {body}"
    );
    let expected: Vec<(u64, u64)> = acks.iter().rev().map(|a| (general, seq_of(a))).collect();
    assert_eq!(ids(&body), expected, "each hit should be the message the ack named: {body}");
    let ts: Vec<u64> = body["results"].as_array().expect("results").iter().filter_map(|m| m["ts"].as_u64()).collect();
    assert!(ts.windows(2).all(|w| w[0] > w[1]), "results must be ordered by ts, newest first: {ts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_messages_are_not_found() {
    let Office { server: _server, alice, bob, mut alice_tab, general } = office().await;
    let mut bob_tab = bob.ws().await;

    let regret = seq_of(&say(&mut bob_tab, general, "the salary spreadsheet is on the shared drive").await);
    say(&mut bob_tab, general, "spreadsheet for the party budget").await;
    let spam = seq_of(&say(&mut bob_tab, general, "buy cheap spreadsheet templates").await);
    assert_eq!(texts_found(&alice, &[("q", "spreadsheet")]).await.len(), 3, "all three are found before any delete");

    bob_tab.ack(json!({"type": "delete", "conv": general, "seq": regret})).await;
    // An admin removes someone else's message.
    alice_tab.ack(json!({"type": "delete", "conv": general, "seq": spam})).await;

    for who in [&alice, &bob] {
        assert_eq!(
            texts_found(who, &[("q", "spreadsheet")]).await,
            ["spreadsheet for the party budget"],
            "{} should no longer find the deleted messages",
            who.name
        );
        assert_eq!(texts_found(who, &[("q", "salary")]).await, Vec::<String>::new(), "a deleted message's words are gone");
        let by_bob = search(who, &[("from", "bob")]).await;
        assert_eq!(found(&by_bob), ["spreadsheet for the party budget"], "from=bob must not list deleted messages: {by_bob}");
        assert!(
            by_bob["results"].as_array().expect("results").iter().all(|m| m["deleted"] == false),
            "no deleted message may come back: {by_bob}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_message_is_found_by_its_new_text_only() {
    let Office { server: _server, alice: _, bob, mut alice_tab, general } = office().await;
    let mut bob_tab = bob.ws().await;

    let older = say(&mut alice_tab, general, "meeting in room blue").await;
    say(&mut bob_tab, general, "meeting notes are up").await;
    assert_eq!(texts_found(&bob, &[("q", "blue")]).await, ["meeting in room blue"]);

    alice_tab.ack(json!({"type": "edit", "conv": general, "seq": seq_of(&older), "text": "meeting in room green"})).await;
    assert_eq!(texts_found(&bob, &[("q", "blue")]).await, Vec::<String>::new(), "the old text must no longer be found");
    let body = search(&bob, &[("q", "green")]).await;
    assert_eq!(found(&body), ["meeting in room green"], "the new text should be found: {body}");
    let hit = &body["results"][0];
    assert_eq!((hit["conv"].as_u64(), hit["seq"].as_u64()), (Some(general), Some(seq_of(&older))), "the same message: {hit}");
    assert!(hit["edited_ts"].as_u64().is_some(), "the hit should show the message as edited: {hit}");
    assert_eq!(hit["ts"], older["ts"], "an edit keeps the message's time: {hit}");

    assert_eq!(
        texts_found(&bob, &[("q", "meeting")]).await,
        ["meeting notes are up", "meeting in room green"],
        "the edited message is found once, in the place of its original time (newest first by ts)"
    );

    alice_tab.ack(json!({"type": "edit", "conv": general, "seq": seq_of(&older), "text": "meeting in room red"})).await;
    assert_eq!(texts_found(&bob, &[("q", "green")]).await, Vec::<String>::new(), "the first edit's text is gone too");
    assert_eq!(texts_found(&bob, &[("q", "red")]).await, ["meeting in room red"]);
    assert_eq!(texts_found(&bob, &[("q", "meeting room")]).await, ["meeting in room red"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_restricts_the_search_to_one_author() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    server.add_user(&alice, "dave").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let mut carol_tab = carol.ws().await;
    let general = alice_tab.room_id("general");

    say(&mut alice_tab, general, "deploy starts at five").await;
    say(&mut bob_tab, general, "deploy looks fine on staging").await;
    say(&mut carol_tab, general, "deploy rolled back").await;
    say(&mut bob_tab, general, "coffee anyone?").await;

    for from in ["bob", "@bob"] {
        let body = search(&carol, &[("q", "deploy"), ("from", from)]).await;
        assert_eq!(found(&body), ["deploy looks fine on staging"], "q=deploy from={from:?} should find only bob's: {body}");
        assert_eq!(body["results"][0]["author"], bob.id, "{body}");

        let body = search(&carol, &[("from", from)]).await;
        assert_eq!(
            found(&body),
            ["coffee anyone?", "deploy looks fine on staging"],
            "from={from:?} alone should list everything bob wrote, newest first: {body}"
        );
        assert!(body["results"].as_array().expect("results").iter().all(|m| m["author"] == bob.id), "{body}");
    }
    assert_eq!(
        texts_found(&carol, &[("q", "a"), ("from", "bob")]).await,
        ["coffee anyone?", "deploy looks fine on staging"],
        "a q with no word is fine with a from: it lists the author's messages"
    );
    assert_eq!(texts_found(&bob, &[("q", "deploy"), ("from", "alice")]).await, ["deploy starts at five"]);
    assert_eq!(texts_found(&bob, &[("q", "coffee"), ("from", "alice")]).await, Vec::<String>::new(), "alice never wrote coffee");
    let body = search(&bob, &[("from", "dave")]).await;
    assert_eq!(found(&body), Vec::<String>::new(), "dave exists but wrote nothing: {body}");
    assert_eq!(body["more"], false, "{body}");

    expect_bad_request(&bob, &[("from", "nobody")], "a from naming no user is a bad request").await;
    expect_bad_request(&bob, &[("q", "deploy"), ("from", "nobody")], "a from naming no user is a bad request, even with q").await;
    expect_bad_request(&bob, &[("q", "deploy"), ("from", "@nobody")], "an @name naming no user is a bad request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_cannot_be_answered_is_refused_with_bad_request() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let mut alice_tab = alice.ws().await;
    let general = alice_tab.room_id("general");
    say(&mut alice_tab, general, "printer out of toner").await;
    say(&mut alice_tab, general, "printer fixed").await;

    expect_bad_request(&alice, &[], "a search with neither q nor from").await;
    expect_bad_request(&alice, &[("q", "")], "an empty q with no from").await;
    expect_bad_request(&alice, &[("q", "   ")], "a q of blanks with no from").await;
    expect_bad_request(&alice, &[("q", "a")], "a q whose only word is too short to be a word").await;
    expect_bad_request(&alice, &[("q", "?! - ,")], "a q of punctuation only").await;

    for limit in ["0", "101", "-1", "ten", "1000000000000"] {
        expect_bad_request(&alice, &[("q", "printer"), ("limit", limit)], "limit must be 1 to 100").await;
    }
    for offset in ["10001", "-1", "many"] {
        expect_bad_request(&alice, &[("q", "printer"), ("offset", offset)], "offset must be 0 to 10,000").await;
    }
    let seventeen: Vec<String> = (1..=17).map(|i| format!("word{i}")).collect();
    expect_bad_request(&alice, &[("q", &seventeen.join(" "))], "a q of more than 16 words").await;
    let long = format!("printer{}", "!".repeat(494));
    assert_eq!(long.chars().count(), 501);
    expect_bad_request(&alice, &[("q", &long)], "a q of more than 500 characters").await;
    expect_bad_request(&alice, &[("q", "printer"), ("conv", "general")], "conv must be an id").await;

    // The limits themselves are allowed.
    let body = search(&alice, &[("q", "printer"), ("limit", "1")]).await;
    assert_eq!((found(&body), body["more"].as_bool()), (vec!["printer fixed".to_owned()], Some(true)), "limit=1: {body}");
    let body = search(&alice, &[("q", "printer"), ("limit", "100")]).await;
    assert_eq!(found(&body).len(), 2, "limit=100 is allowed: {body}");
    let body = search(&alice, &[("q", "printer"), ("offset", "10000")]).await;
    assert_eq!((found(&body).len(), body["more"].as_bool()), (0, Some(false)), "offset=10000 is allowed: {body}");
    let eight = "printer toner aa bb cc dd ee ff";
    let body = search(&alice, &[("q", eight)]).await;
    assert_eq!(found(&body), Vec::<String>::new(), "8 words are allowed (no message has all of them): {body}");
    let exactly_500 = format!("printer{}", "!".repeat(493));
    assert_eq!(exactly_500.chars().count(), 500);
    assert_eq!(
        texts_found(&alice, &[("q", &exactly_500)]).await,
        ["printer fixed", "printer out of toner"],
        "a q of exactly 500 characters is allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_finds_messages_of_a_dm_or_private_room_they_are_not_in() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let dave = server.add_user(&alice, "dave").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let mut carol_tab = carol.ws().await;
    let general = alice_tab.room_id("general");

    let dm = conv_of(&alice_tab.ack(json!({"type": "open_dm", "users": [bob.id]})).await);
    let secret = conv_of(
        &alice_tab
            .ack(json!({"type": "create_room", "name": "layoffs", "topic": "", "private": true, "members": [bob.id]}))
            .await,
    );
    let group = conv_of(&alice_tab.ack(json!({"type": "open_dm", "users": [bob.id, dave.id]})).await);
    let carols_dm = conv_of(&carol_tab.ack(json!({"type": "open_dm", "users": [dave.id]})).await);
    let carols_notes = conv_of(&carol_tab.ack(json!({"type": "open_dm", "users": []})).await);

    say(&mut alice_tab, dm, "budget numbers for bob only").await;
    say(&mut alice_tab, secret, "budget cuts are planned").await;
    say(&mut bob_tab, group, "budget review with dave").await;
    say(&mut carol_tab, carols_dm, "budget question for dave").await;
    say(&mut carol_tab, carols_notes, "budget note to self").await;
    say(&mut carol_tab, general, "budget meeting at noon").await;

    let body = search(&carol, &[("q", "budget")]).await;
    assert_eq!(
        found(&body),
        ["budget meeting at noon", "budget note to self", "budget question for dave"],
        "carol must find only the messages of conversations she is in: {body}"
    );
    assert_eq!(body["more"], false, "`more` must not hint at hidden matches: {body}");
    for from in ["alice", "bob"] {
        let body = search(&carol, &[("from", from)]).await;
        assert_eq!(found(&body), Vec::<String>::new(), "from={from} must not reveal what {from} wrote elsewhere: {body}");
        assert_eq!(body["more"], false, "{body}");
    }
    assert_eq!(texts_found(&carol, &[("q", "cuts")]).await, Vec::<String>::new(), "the private room's words stay private");

    assert_eq!(
        texts_found(&bob, &[("q", "budget")]).await,
        ["budget meeting at noon", "budget review with dave", "budget cuts are planned", "budget numbers for bob only"],
        "bob finds what is said in his DM, his private room, his group and general, and not carol's DM or notes"
    );
    assert_eq!(
        texts_found(&dave, &[("q", "budget")]).await,
        ["budget meeting at noon", "budget question for dave", "budget review with dave"],
        "dave finds his group, his DM with carol and general"
    );

    // Asking for one of those conversations by id answers like a conversation that does not exist.
    let missing = (secret.max(dm).max(group).max(carols_dm).max(carols_notes) + 100_000).to_string();
    for (what, conv) in [("alice and bob's DM", dm), ("the private room", secret), ("the group DM", group)] {
        expect_status(
            &carol,
            &[("q", "budget"), ("conv", &conv.to_string())],
            404,
            "not_found",
            &format!("carol searched {what}"),
        )
        .await;
        expect_status(
            &carol,
            &[("from", "alice"), ("conv", &conv.to_string())],
            404,
            "not_found",
            &format!("carol listed {what}"),
        )
        .await;
    }
    expect_status(&carol, &[("q", "budget"), ("conv", &missing)], 404, "not_found", "a conversation that does not exist").await;
    expect_status(&bob, &[("q", "budget"), ("conv", &carols_notes.to_string())], 404, "not_found", "carol's notes to self").await;
    assert_eq!(
        texts_found(&bob, &[("q", "budget"), ("conv", &dm.to_string())]).await,
        ["budget numbers for bob only"],
        "a member may search the DM by id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_is_searchable_while_you_are_in_it() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;

    let release = conv_of(
        &alice_tab.ack(json!({"type": "create_room", "name": "release", "topic": "", "private": false, "members": []})).await,
    );
    say(&mut alice_tab, release, "code freeze at noon").await;
    assert_eq!(texts_found(&bob, &[("q", "freeze")]).await, Vec::<String>::new(), "bob has not joined release yet");
    expect_status(&bob, &[("q", "freeze"), ("conv", &release.to_string())], 404, "not_found", "bob is not in release yet").await;

    bob_tab.ack(json!({"type": "join", "conv": release})).await;
    assert_eq!(
        texts_found(&bob, &[("q", "freeze")]).await,
        ["code freeze at noon"],
        "a member finds what was said before he joined, as history shows it"
    );
    assert_eq!(texts_found(&bob, &[("q", "freeze"), ("conv", &release.to_string())]).await, ["code freeze at noon"]);

    bob_tab.ack(json!({"type": "leave", "conv": release})).await;
    say(&mut alice_tab, release, "freeze lifted").await;
    assert_eq!(
        texts_found(&bob, &[("q", "freeze")]).await,
        Vec::<String>::new(),
        "after leaving, bob no longer searches release"
    );
    expect_status(&bob, &[("q", "freeze"), ("conv", &release.to_string())], 404, "not_found", "bob left release").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conv_restricts_the_search_to_one_conversation() {
    let Office { server: _server, alice: _, bob, mut alice_tab, general } = office().await;
    let ops = conv_of(
        &alice_tab.ack(json!({"type": "create_room", "name": "ops", "topic": "", "private": false, "members": [bob.id]})).await,
    );
    let dm = conv_of(&alice_tab.ack(json!({"type": "open_dm", "users": [bob.id]})).await);

    say(&mut alice_tab, general, "outage in building A").await;
    say(&mut alice_tab, ops, "outage postmortem draft").await;
    say(&mut alice_tab, dm, "outage was my fault").await;
    say(&mut alice_tab, ops, "disk replaced").await;

    assert_eq!(texts_found(&bob, &[("q", "outage"), ("conv", &ops.to_string())]).await, ["outage postmortem draft"]);
    assert_eq!(texts_found(&bob, &[("q", "outage"), ("conv", &general.to_string())]).await, ["outage in building A"]);
    assert_eq!(texts_found(&bob, &[("q", "outage"), ("conv", &dm.to_string())]).await, ["outage was my fault"]);
    assert_eq!(
        texts_found(&bob, &[("from", "alice"), ("conv", &ops.to_string())]).await,
        ["disk replaced", "outage postmortem draft"],
        "from and conv together list one author's messages in one conversation"
    );
    let body = search(&bob, &[("q", "outage"), ("conv", &ops.to_string())]).await;
    assert!(body["results"].as_array().expect("results").iter().all(|m| m["conv"] == ops), "only ops messages: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_search_answers_401() {
    let Office { server, alice: _, bob, mut alice_tab, general } = office().await;
    say(&mut alice_tab, general, "internal roadmap").await;

    for path in
        ["/api/search?q=roadmap", "/api/search?from=alice", "/api/search", &format!("/api/search?q=roadmap&conv={general}")]
    {
        let (status, body) = server.anonymous_get(path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("unauthorized")),
            "GET {path} without signing in must be refused: {body}"
        );
        assert!(!body.to_string().contains("internal roadmap"), "nothing may leak without a session: {body}");
    }

    assert_eq!(texts_found(&bob, &[("q", "roadmap")]).await, ["internal roadmap"], "signed in, bob finds it");
    let (status, body) = bob.post("/api/logout", json!({})).await;
    assert_eq!(status, 204, "bob signs out: {body}");
    let (status, body) = search_raw(&bob, &[("q", "roadmap")]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "a signed-out session must not search: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_walks_every_match_exactly_once() {
    let Office { server: _server, alice: _, bob, mut alice_tab, general } = office().await;
    let mut bob_tab = bob.ws().await;
    let ops = conv_of(
        &alice_tab.ack(json!({"type": "create_room", "name": "ops", "topic": "", "private": false, "members": [bob.id]})).await,
    );

    // 23 matches spread over two conversations and two authors, with other talk in between.
    let mut expected = Vec::new();
    for i in 0..23 {
        let conv = if i % 3 == 0 { ops } else { general };
        let tab = if i % 2 == 0 { &mut alice_tab } else { &mut bob_tab };
        let text = format!("weekly report number {i}");
        let ack = say(tab, conv, &text).await;
        expected.push((conv, seq_of(&ack), i % 2 == 1));
        if i % 5 == 0 {
            say(&mut alice_tab, general, &format!("noise {i}")).await;
        }
    }
    expected.reverse();
    let expected_ids: Vec<(u64, u64)> = expected.iter().map(|(c, s, _)| (*c, *s)).collect();

    let mut seen = Vec::new();
    let mut mores = Vec::new();
    let mut offset = 0;
    loop {
        let body = search(&bob, &[("q", "weekly report"), ("limit", "10"), ("offset", &offset.to_string())]).await;
        let page = ids(&body);
        assert!(page.len() <= 10, "a page must not exceed the limit: {body}");
        mores.push(body["more"].as_bool().expect("more"));
        offset += page.len();
        seen.extend(page);
        if body["more"] != true || mores.len() > 5 {
            break;
        }
    }
    assert_eq!(mores, [true, true, false], "pages of 10, 10 and 3: `more` is true until the last page");
    assert_eq!(seen, expected_ids, "the pages together should hold every match once, newest first, without overlap");

    let body = search(&bob, &[("q", "weekly report")]).await;
    assert_eq!(ids(&body), expected_ids[..20], "the default page is the 20 newest: {body}");
    assert_eq!(body["more"], true, "{body}");
    let body = search(&bob, &[("q", "weekly report"), ("offset", "20")]).await;
    assert_eq!(ids(&body), expected_ids[20..], "the rest after the first default page: {body}");
    assert_eq!(body["more"], false, "{body}");
    let body = search(&bob, &[("q", "weekly report"), ("limit", "5"), ("offset", "18")]).await;
    assert_eq!(ids(&body), expected_ids[18..23], "exactly the last five: {body}");
    assert_eq!(body["more"], false, "the page ends exactly at the last match: {body}");
    let body = search(&bob, &[("q", "weekly report"), ("offset", "23")]).await;
    assert_eq!((ids(&body), body["more"].as_bool()), (vec![], Some(false)), "past the end: {body}");
    let body = search(&bob, &[("q", "report"), ("limit", "23")]).await;
    assert_eq!((ids(&body).len(), body["more"].as_bool()), (23, Some(false)), "all 23 in one page, nothing more: {body}");

    let body = search(&bob, &[("from", "bob"), ("limit", "4"), ("offset", "4")]).await;
    let bobs: Vec<(u64, u64)> = expected.iter().filter(|(_, _, by_bob)| *by_bob).map(|(c, s, _)| (*c, *s)).collect();
    assert_eq!(ids(&body), bobs[4..8], "paging works for from= too: {body}");
    assert_eq!(body["more"], true, "bob wrote 11, this page ends at 8: {body}");
}

/// Paging with `next` while the conversation goes on: a result deleted on an earlier page and
/// a new match arriving between pages neither hide nor repeat anything on the next page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_with_next_holds_while_messages_come_and_go() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let mut tab = alice.ws().await;
    let general = tab.room_id("general");
    let mut seqs = Vec::new();
    for i in 0..12 {
        seqs.push(seq_of(&say(&mut tab, general, &format!("standup notes {i}")).await));
    }
    seqs.reverse(); // newest first, as results come

    let first = search(&alice, &[("q", "standup"), ("limit", "5")]).await;
    assert_eq!(ids(&first), seqs[..5].iter().map(|s| (general, *s)).collect::<Vec<_>>(), "{first}");
    let next = first["next"].as_str().expect("a page with more after it carries next").to_string();

    // Between pages: a match shown on page one is deleted, and a new match arrives.
    tab.ack(json!({"type": "delete", "conv": general, "seq": seqs[1]})).await;
    say(&mut tab, general, "standup moved to 10:00").await;

    let second = search(&alice, &[("q", "standup"), ("limit", "5"), ("before", &next)]).await;
    assert_eq!(
        ids(&second),
        seqs[5..10].iter().map(|s| (general, *s)).collect::<Vec<_>>(),
        "the page right after the last result shown: {second}"
    );
    let third = search(&alice, &[("q", "standup"), ("limit", "5"), ("before", second["next"].as_str().expect("next"))]).await;
    assert_eq!(ids(&third), seqs[10..].iter().map(|s| (general, *s)).collect::<Vec<_>>(), "{third}");
    assert_eq!((third["more"].as_bool(), third["next"].is_null()), (Some(false), true), "the last page: {third}");

    for bad in ["yesterday", "1.2", "1.2.3.4", "-1.1.1"] {
        expect_bad_request(&alice, &[("q", "standup"), ("before", bad)], "before must be a next given earlier").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_from_several_conversations_are_merged_newest_first() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");
    let dm = conv_of(&alice_tab.ack(json!({"type": "open_dm", "users": [bob.id]})).await);
    let secret = conv_of(
        &alice_tab
            .ack(json!({"type": "create_room", "name": "finance", "topic": "", "private": true, "members": [bob.id]}))
            .await,
    );
    let group = conv_of(&alice_tab.ack(json!({"type": "open_dm", "users": [bob.id, carol.id]})).await);
    let notes = conv_of(&alice_tab.ack(json!({"type": "open_dm", "users": []})).await);

    let plan = [
        (general, "quarterly numbers are in"),
        (dm, "quarterly bonus for you"),
        (secret, "quarterly audit starts monday"),
        (notes, "quarterly self review due"),
        (general, "quarterly all hands on friday"),
        (group, "quarterly offsite ideas"),
        (dm, "quarterly bonus confirmed"),
    ];
    let mut sent = Vec::new();
    for (i, (conv, text)) in plan.iter().enumerate() {
        let tab = if i == 5 { &mut bob_tab } else { &mut alice_tab };
        let ack = say(tab, *conv, text).await;
        sent.push((*conv, seq_of(&ack), text.to_string()));
    }
    let newest_first: Vec<(u64, u64, String)> = sent.iter().rev().cloned().collect();

    let body = search(&alice, &[("q", "quarterly")]).await;
    let want: Vec<(u64, u64)> = newest_first.iter().map(|(c, s, _)| (*c, *s)).collect();
    assert_eq!(
        ids(&body),
        want,
        "alice's hits from five conversations should be one list, newest first: {}",
        found(&body).join(" | ")
    );

    let body = search(&bob, &[("q", "quarterly")]).await;
    let want: Vec<(u64, u64)> = newest_first.iter().filter(|(c, _, _)| *c != notes).map(|(c, s, _)| (*c, *s)).collect();
    assert_eq!(ids(&body), want, "bob's hits (everything but alice's notes), newest first: {}", found(&body).join(" | "));

    let body = search(&carol, &[("q", "quarterly")]).await;
    let want: Vec<(u64, u64)> =
        newest_first.iter().filter(|(c, _, _)| *c == general || *c == group).map(|(c, s, _)| (*c, *s)).collect();
    assert_eq!(ids(&body), want, "carol's hits: general and her group only, newest first: {}", found(&body).join(" | "));

    let mut paged = Vec::new();
    for offset in [0, 2, 4, 6] {
        let body = search(&alice, &[("q", "quarterly"), ("limit", "2"), ("offset", &offset.to_string())]).await;
        assert_eq!(body["more"].as_bool(), Some(offset < 6), "limit=2 offset={offset}: {body}");
        paged.extend(ids(&body));
    }
    let want: Vec<(u64, u64)> = newest_first.iter().map(|(c, s, _)| (*c, *s)).collect();
    assert_eq!(paged, want, "paging the merged list gives the same list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_still_finds_messages_after_a_restart() {
    let mut server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    server.add_user(&alice, "carol").await;
    let mut alice_tab = alice.ws().await;
    let general = alice_tab.room_id("general");
    let dm = conv_of(&alice_tab.ack(json!({"type": "open_dm", "users": [bob.id]})).await);

    let kept = say(&mut alice_tab, general, "invoice 1234 is paid").await;
    let edited = seq_of(&say(&mut alice_tab, general, "invoice draft for acme").await);
    let gone = seq_of(&say(&mut alice_tab, general, "invoice with typos").await);
    let private = say(&mut alice_tab, dm, "invoice dispute with bob").await;
    alice_tab.ack(json!({"type": "edit", "conv": general, "seq": edited, "text": "invoice final for globex"})).await;
    alice_tab.ack(json!({"type": "delete", "conv": general, "seq": gone})).await;
    alice_tab.close().await;

    server.restart().await;

    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let bob = server.login("bob", &password_of("bob")).await;
    let carol = server.login("carol", &password_of("carol")).await;
    let body = search(&bob, &[("q", "invoice")]).await;
    assert_eq!(
        found(&body),
        ["invoice dispute with bob", "invoice final for globex", "invoice 1234 is paid"],
        "after a restart bob should find the same messages, edited text included, deleted one excluded: {body}"
    );
    assert_eq!(body["results"][2]["seq"], seq_of(&kept), "{body}");
    assert_eq!((body["results"][0]["conv"].as_u64(), body["results"][0]["seq"].as_u64()), (Some(dm), Some(seq_of(&private))));
    assert_eq!(texts_found(&bob, &[("q", "acme")]).await, Vec::<String>::new(), "the pre-edit text stays gone after a restart");
    assert_eq!(texts_found(&bob, &[("q", "globex")]).await, ["invoice final for globex"]);
    assert_eq!(texts_found(&bob, &[("q", "typos")]).await, Vec::<String>::new(), "the deleted message stays gone");
    assert_eq!(
        texts_found(&carol, &[("q", "invoice")]).await,
        ["invoice final for globex", "invoice 1234 is paid"],
        "carol still does not find alice and bob's DM after a restart"
    );
    assert_eq!(texts_found(&bob, &[("q", "1234"), ("from", "@alice")]).await, ["invoice 1234 is paid"]);

    let mut alice_tab = alice.ws_tab("alice's tab after the restart").await;
    say(&mut alice_tab, general, "invoice 5678 sent").await;
    assert_eq!(
        texts_found(&carol, &[("q", "invoice")]).await,
        ["invoice 5678 sent", "invoice final for globex", "invoice 1234 is paid"],
        "new messages join the old ones in search after a restart"
    );
}

/// Messages written before search existed (a schema-1 data file, upgraded by this binary) are
/// found like new ones, and the privacy rules hold for them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_before_the_upgrade_are_found() {
    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schema-v1.redb");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    std::fs::copy(FIXTURE, &data).expect("copy the schema-1 fixture");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let server = hallway::Server::start(listener, hallway::Config::new(data)).await.expect("the schema-1 file opens and serves");
    let base = format!("http://{}", server.local_addr());

    let sign_in = |name: &'static str, password: &'static str| {
        let base = base.clone();
        async move {
            let http = reqwest::Client::builder().cookie_store(true).build().expect("reqwest client");
            let resp = http.post(format!("{base}/api/login")).json(&json!({"name": name, "password": password})).send().await;
            let (status, body) = read_response(resp.expect("POST /api/login")).await;
            assert_eq!(status, 200, "{name} signs in on the upgraded file: {body}");
            http
        }
    };
    let get = |http: &reqwest::Client, path: String| {
        let request = http.get(format!("{base}{path}"));
        async move { read_response(request.send().await.expect("GET")).await }
    };
    let alice = sign_in("alice", "correct horse battery").await;
    let bob = sign_in("bob", "bob-secret-pw").await;

    let (status, body) = get(&bob, search_path(&[("q", "schema")])).await;
    assert_eq!(status, 200, "{body}");
    let mut hits = found(&body);
    let ts: Vec<u64> = body["results"].as_array().expect("results").iter().filter_map(|m| m["ts"].as_u64()).collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "old messages are found newest first too: {body}");
    hits.sort();
    assert_eq!(hits, ["@bob edited in schema one", "hello from schema one"], "bob should find general's old messages: {body}");
    let (status, body) = get(&bob, search_path(&[("q", "edited")])).await;
    assert_eq!((status, found(&body)), (200, vec!["@bob edited in schema one".to_owned()]), "an old edit: {body}");
    let (status, body) = get(&bob, search_path(&[("q", "PRIVATE")])).await;
    assert_eq!((status, found(&body)), (200, vec!["a private word".to_owned()]), "bob finds his old DM: {body}");

    let (status, body) = {
        let resp = alice
            .post(format!("{base}/api/users"))
            .json(&json!({"name": "carol", "display_name": "Carol", "password": "carol-secret-pw", "role": "member"}))
            .send()
            .await
            .expect("POST /api/users");
        read_response(resp).await
    };
    assert_eq!(status, 201, "alice adds carol: {body}");
    let carol = sign_in("carol", "carol-secret-pw").await;
    let (status, body) = get(&carol, search_path(&[("q", "private")])).await;
    assert_eq!((status, found(&body)), (200, vec![]), "carol must not find alice and bob's old DM: {body}");
    let (status, body) = get(&carol, search_path(&[("q", "hello")])).await;
    assert_eq!((status, found(&body)), (200, vec!["hello from schema one".to_owned()]), "carol is in general: {body}");
    server.shutdown().await;
}
