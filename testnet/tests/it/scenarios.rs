//! Every built-in scenario at a small size, with its outcome asserted.

use testnet::{Report, Scenario};

const MIB: u64 = 1 << 20;

/// One scenario at a time: each is a whole swarm, and two at once on a
/// two-core machine would measure the machine, not the swarm.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run(name: &str, size: u64) -> Report {
    let _turn = ONE_AT_A_TIME.lock().await;
    let scenario = Scenario::named(name, Some(size)).unwrap();
    let report = testnet::run(&scenario, |_, _| {})
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        report.all_exact(),
        "{name}: a copy differs\n{}",
        report.table()
    );
    for m in report
        .members
        .iter()
        .filter(|m| m.kind.ends_with("leecher"))
    {
        assert!(
            m.completed_after.is_some(),
            "{name}: {} did not finish",
            m.name
        );
    }
    report
}

/// Only peers that lied are banned, by anyone.
fn only_liars_banned(report: &Report) {
    for m in &report.members {
        for banned in &m.banned {
            assert_eq!(
                banned,
                "liar",
                "{} banned an honest peer\n{}",
                m.name,
                report.table()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_scenario_trades_bans_the_liar_and_nobody_else() {
    let report = run("default", 16 * MIB).await;
    only_liars_banned(&report);
    assert!(
        report
            .members
            .iter()
            .any(|m| m.banned.iter().any(|b| b == "liar")),
        "the liar is banned\n{}",
        report.table()
    );
    assert!(
        report.leecher_share > 0.2,
        "leechers give each other a real share\n{}",
        report.table()
    );
    // Both transports are the default: btc peers meet over uTP.
    assert!(
        report.members.iter().map(|m| m.over_utp).sum::<usize>() > 0,
        "no connection over uTP\n{}",
        report.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liar_is_banned_and_everyone_completes() {
    let report = run("liar", 4 * MIB).await;
    only_liars_banned(&report);
    let banned_by = report
        .members
        .iter()
        .filter(|m| m.banned.iter().any(|b| b == "liar"))
        .count();
    assert!(banned_by >= 1, "{}", report.table());
    let failures: u32 = report.members.iter().map(|m| m.hash_failures).sum();
    assert!(
        failures >= 1,
        "the liar's data was caught\n{}",
        report.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_peers_do_not_hold_the_others_back() {
    let report = run("slow", 4 * MIB).await;
    // The swarm takes its data from the fast: the slow seeder gave the
    // leechers less than the fast one did.
    let from = |source: &str| -> u64 {
        report
            .members
            .iter()
            .filter_map(|m| m.received_from.get(source))
            .sum()
    };
    assert!(
        from("slow-seed") < from("seed-1"),
        "slow {} vs fast {}\n{}",
        from("slow-seed"),
        from("seed-1"),
        report.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_does_not_stall_anyone() {
    let report = run("churn", 8 * MIB).await;
    // Coming back, they resumed rather than started over.
    for m in report.members.iter().filter(|m| m.faults.contains("away")) {
        assert!(
            m.downloaded < 8 * MIB * 3 / 2,
            "{} downloaded {} bytes of 8 MiB\n{}",
            m.name,
            m.downloaded,
            report.table()
        );
    }
    // The two that left were away for a while, and came back to finish.
    for m in report.members.iter().filter(|m| m.faults.contains("away")) {
        let gap = m
            .progress
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .fold(0.0, f64::max);
        assert!(gap >= 1.0, "{} was away ({gap} s gap)", m.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_wait_for_a_late_seeder_then_finish() {
    let report = run("late-seeder", 4 * MIB).await;
    for m in report.members.iter().filter(|m| m.kind == "btc leecher") {
        assert!(
            m.completed_after.unwrap() >= 2.0,
            "{} finished before the seeder came",
            m.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_that_drops_connections_mid_piece_does_no_harm() {
    let report = run("flaky", 4 * MIB).await;
    let failures: u32 = report.members.iter().map(|m| m.hash_failures).sum();
    assert_eq!(failures, 0, "{}", report.table());
    // It did take part (and dropped its connections) rather than sit out.
    let from_flaky: u64 = report
        .members
        .iter()
        .filter_map(|m| m.received_from.get("flaky"))
        .sum();
    assert!(from_flaky > 0, "{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freerider_gets_the_content_and_gives_nothing() {
    let report = run("freerider", 4 * MIB).await;
    let freerider = report.member("freerider").unwrap();
    assert_eq!(freerider.uploaded, 0, "{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distant_seeders_still_deliver() {
    run("latency", 4 * MIB).await;
}

/// btc, aria2 and Transmission in one swarm (`.ci/run` installs them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_swarm_with_real_clients_completes() {
    let report = run("mixed", 4 * MIB).await;
    for name in ["aria2-leech", "transmission-leech"] {
        let m = report.member(name).unwrap();
        assert_eq!(m.byte_exact, Some(true), "{name}\n{}", report.table());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_seed_alone_serves_a_swarm_that_trades_what_it_sends() {
    let size = 8 * MIB;
    let report = run("webseed", size).await;
    only_liars_banned(&report);
    let web = report.member("web-seed").expect("the web seed is reported");
    // Every byte came from it once at least: nobody else had the content.
    assert!(web.uploaded >= size, "{}", report.table());
    for m in report.members.iter().filter(|m| m.kind == "btc leecher") {
        assert!(
            m.received_from.get("web-seed").is_some_and(|b| *b > 0),
            "{} got nothing from the web seed\n{}",
            m.name,
            report.table()
        );
    }
    assert!(
        report.leecher_share > 0.2,
        "leechers give each other a real share\n{}",
        report.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_strangers_in_a_full_seeder_give_way_to_the_leechers() {
    let report = run("crowd", 4 * MIB).await;
    // They took every place (50 at least of the 80 tried: on a slow
    // machine the later ones find the first mute long enough to displace
    // them) before the leechers came, and as many gave way as it took.
    assert!(report.strangers >= 50, "{}", report.table());
    assert!(report.strangers_gave_way >= 1, "{}", report.table());
    let seed = report.member("seed-1").unwrap();
    assert!(seed.uploaded >= 4 * MIB, "{}", report.table());
}

/// The most peers any leecher was connected to at once from `source`.
fn most_from(report: &Report, source: &str) -> usize {
    report
        .members
        .iter()
        .filter(|m| m.kind == "btc leecher")
        .filter_map(|m| m.learnt.get(source).copied())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_tracker_the_dht_brings_the_swarm_together() {
    let report = run("dht", 4 * MIB).await;
    assert_eq!(most_from(&report, "tracker"), 0, "{}", report.table());
    assert!(most_from(&report, "dht") > 0, "{}", report.table());
    assert!(
        report.leecher_share > 0.2,
        "leechers found each other\n{}",
        report.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_told_only_of_the_seeder_find_each_other_through_pex() {
    let report = run("pex", 4 * MIB).await;
    assert!(most_from(&report, "pex") > 0, "{}", report.table());
    assert!(
        report.leecher_share > 0.2,
        "leechers found each other\n{}",
        report.table()
    );
}
