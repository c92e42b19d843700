//! `netd stats` (drop counters by reason) and `netd system reset`.
use super::output::print_table;
use crate::client::Client;

pub(super) async fn stats(client: &Client, format: Option<&str>) -> anyhow::Result<()> {
    let stats = client.stats().await?;
    if format == Some("json") {
        println!("{}", serde_json::to_string(&stats)?);
    } else {
        let rows: Vec<Vec<String>> =
            stats.drops.iter().map(|d| vec![d.reason.clone(), d.packets.to_string(), d.bytes.to_string()]).collect();
        print_table(&["DROP REASON", "PACKETS", "BYTES"], &rows);
    }
    Ok(())
}

pub(super) async fn reset(client: &Client) -> anyhow::Result<()> {
    client.reset().await?;
    Ok(())
}
