mod support;

#[test]
fn postgres_server_starts_and_answers() {
    let pg = support::postgres::PgServer::start(&[]);
    assert_eq!(pg.psql("select 1"), "1");
}
