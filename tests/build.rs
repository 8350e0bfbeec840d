//! PostgreSQL variants of the e2e tests need `BRAIN_TEST_POSTGRES_URL`. Without it they must say
//! so, not print "ok" having run nothing: this script turns the variable's presence at build time
//! into `cfg(brain_postgres)`, and without it every PostgreSQL test is marked `#[ignore]` with the
//! reason, so `cargo test` lists each as "ignored" and counts them in every binary's summary.
//! Setting or clearing the variable rebuilds only this package's tests.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(brain_postgres)");
    println!("cargo::rerun-if-env-changed=BRAIN_TEST_POSTGRES_URL");
    if std::env::var_os("BRAIN_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=brain_postgres");
    }
}
