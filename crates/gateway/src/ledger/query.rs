//! Reports over the ledger: totals and breakdowns from the rollups (exact: the ragged edges of a
//! range are read from raw rows, see `store::plan`), and pages of raw rows.

pub use super::store::{Filter, GroupBy, Totals};
use super::store::{Row, Store};

#[derive(Debug, Clone)]
pub struct Report {
    pub totals: Totals,
    pub by_provider: Vec<(String, Totals)>,
    pub by_model: Vec<(String, Totals)>,
    /// Present when a `group_by` was asked for.
    pub groups: Option<(GroupBy, Vec<(String, Totals)>)>,
    pub records: Vec<Row>,
}

pub struct ReportRequest {
    pub filter: Filter,
    pub group_by: Option<GroupBy>,
    pub limit: i64,
    pub offset: i64,
}

pub async fn report(store: &Store, req: &ReportRequest) -> Result<Report, sqlx::Error> {
    let f = &req.filter;
    let totals = store
        .aggregate(f, None)
        .await?
        .into_iter()
        .next()
        .map(|(_, t)| t)
        .unwrap_or_default();
    let by_provider = store.aggregate(f, Some(GroupBy::Provider)).await?;
    let by_model = store.aggregate(f, Some(GroupBy::Model)).await?;
    let groups = match req.group_by {
        Some(GroupBy::Provider) => Some((GroupBy::Provider, by_provider.clone())),
        Some(GroupBy::Model) => Some((GroupBy::Model, by_model.clone())),
        Some(g) => Some((g, store.aggregate(f, Some(g)).await?)),
        None => None,
    };
    let records = if req.limit > 0 {
        store.records(f, req.limit, req.offset).await?
    } else {
        Vec::new()
    };
    Ok(Report {
        totals,
        by_provider,
        by_model,
        groups,
        records,
    })
}
