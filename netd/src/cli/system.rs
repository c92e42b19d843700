//! `netd stats` (drop counters by reason) and `netd system reset`.
use serde_json::json;

use super::output::{print_table, str_of};
use crate::client::Client;

pub(super) async fn stats(client: &Client, format: Option<&str>) -> anyhow::Result<()> {
    let stats = client.get("/stats").await?;
    if format == Some("json") {
        println!("{stats}");
    } else {
        let rows: Vec<Vec<String>> = stats["drops"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| vec![str_of(&d["reason"]), d["packets"].to_string(), d["bytes"].to_string()])
            .collect();
        print_table(&["DROP REASON", "PACKETS", "BYTES"], &rows);
    }
    Ok(())
}

pub(super) async fn reset(client: &Client) -> anyhow::Result<()> {
    client.post("/system/reset", json!({})).await?;
    Ok(())
}
