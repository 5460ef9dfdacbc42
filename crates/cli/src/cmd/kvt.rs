//! `pravaha kvt create|list|delete|get|put|remove`: Key-Value Tables.
//!
//! Keys are given as text and must have exactly the table's key lengths in bytes (a table's
//! keys are fixed-length, as in Pravega); values are text.

use anyhow::Context as _;
use bytes::Bytes;
use clap::Subcommand;
use pravaha_client::table::{
    KeyValueTable, KeyValueTableConfiguration, KeyValueTableInfo, TableKey, Version,
};
use serde_json::json;

use super::output::{self, Table};
use super::units::parse_size;
use super::{names, Context, Failure};

#[derive(Subcommand, Debug, Clone)]
pub enum KvtCommand {
    /// Create a Key-Value Table (succeeds if it exists already)
    Create {
        /// SCOPE/TABLE
        table: String,
        /// Partitions (table segments) the keys are spread over
        #[arg(long, value_name = "N", default_value_t = 1)]
        partitions: u32,
        /// Length in bytes of every primary key
        #[arg(long, value_name = "BYTES")]
        key_length: u32,
        /// Length in bytes of every secondary key (0: none)
        #[arg(long, value_name = "BYTES", default_value_t = 0)]
        secondary_key_length: u32,
        /// Size of the partitions' chunks on the segment store [default: the server's]
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        rollover_size: Option<u64>,
    },
    /// List the Key-Value Tables of a scope
    List { scope: String },
    /// Delete a Key-Value Table and its data
    Delete { table: String },
    /// Print a key's value (and, with --json, its version)
    Get {
        table: String,
        key: String,
        /// The secondary key, for tables that have them
        #[arg(long, value_name = "KEY")]
        secondary: Option<String>,
    },
    /// Set a key's value; prints the new version
    Put {
        table: String,
        key: String,
        value: String,
        #[arg(long, value_name = "KEY")]
        secondary: Option<String>,
        /// Only if the key's version is VERSION (from `kvt get --json` or an earlier put)
        #[arg(long, value_name = "VERSION", conflicts_with = "if_absent")]
        version: Option<i64>,
        /// Only if the key does not exist
        #[arg(long)]
        if_absent: bool,
    },
    /// Remove a key (nothing happens if it does not exist, unless --version is given)
    Remove {
        table: String,
        key: String,
        #[arg(long, value_name = "KEY")]
        secondary: Option<String>,
        /// Only if the key's version is VERSION
        #[arg(long, value_name = "VERSION")]
        version: Option<i64>,
    },
}

pub async fn run(context: &Context, command: KvtCommand) -> anyhow::Result<()> {
    match command {
        KvtCommand::Create {
            table,
            partitions,
            key_length,
            secondary_key_length,
            rollover_size,
        } => {
            let mut config =
                KeyValueTableConfiguration::new(partitions, key_length, secondary_key_length);
            config.rollover_size_bytes = rollover_size.unwrap_or(0);
            create(context, &table, &config).await
        }
        KvtCommand::List { scope } => list(context, &scope).await,
        KvtCommand::Delete { table } => delete(context, &table).await,
        KvtCommand::Get {
            table,
            key,
            secondary,
        } => get(context, &table, &key, secondary.as_deref()).await,
        KvtCommand::Put {
            table,
            key,
            value,
            secondary,
            version,
            if_absent,
        } => {
            let (table, key) = open(context, &table, &key, secondary.as_deref()).await?;
            put(context, &table, &key, value, version, if_absent).await
        }
        KvtCommand::Remove {
            table,
            key,
            secondary,
            version,
        } => {
            let (table, key) = open(context, &table, &key, secondary.as_deref()).await?;
            remove(context, &table, &key, version).await
        }
    }
}

async fn create(
    context: &Context,
    text: &str,
    config: &KeyValueTableConfiguration,
) -> anyhow::Result<()> {
    let info = table_info(text)?;
    if config.partition_count == 0 || config.primary_key_length == 0 {
        return Err(Failure::invalid("--partitions and --key-length must be at least 1").into());
    }
    let created = context
        .controller
        .create_key_value_table(&info, config)
        .await
        .with_context(|| format!("creating key-value table {info}"))?;
    if context.json {
        output::json(&json!({ "table": info.to_string(), "created": created }));
    } else if created {
        output::print(&format!("created key-value table {info}\n"));
    } else {
        output::print(&format!("key-value table {info} exists already\n"));
    }
    Ok(())
}

async fn delete(context: &Context, text: &str) -> anyhow::Result<()> {
    let info = table_info(text)?;
    let deleted = context
        .controller
        .delete_key_value_table(&info)
        .await
        .with_context(|| format!("deleting key-value table {info}"))?;
    if !deleted {
        return Err(Failure::not_found(format!("key-value table {info} does not exist")).into());
    }
    if context.json {
        output::json(&json!({ "table": info.to_string(), "deleted": true }));
    } else {
        output::print(&format!("deleted key-value table {info}\n"));
    }
    Ok(())
}

async fn put(
    context: &Context,
    table: &KeyValueTable,
    key: &TableKey,
    value: String,
    version: Option<i64>,
    if_absent: bool,
) -> anyhow::Result<()> {
    let value = Bytes::from(value.into_bytes());
    let result = match (version, if_absent) {
        (Some(version), _) => table.replace(key, value, Version(version)).await,
        (None, true) => table.put_if_absent(key, value).await,
        (None, false) => table.put(key, value).await,
    };
    let version = result.with_context(|| format!("putting a key into {}", table.info()))?;
    if context.json {
        output::json(&json!({ "table": table.info().to_string(), "version": version.0 }));
    } else {
        output::print(&format!("{}\n", version.0));
    }
    Ok(())
}

async fn remove(
    context: &Context,
    table: &KeyValueTable,
    key: &TableKey,
    version: Option<i64>,
) -> anyhow::Result<()> {
    match version {
        Some(version) => table.remove_if(key, Version(version)).await,
        None => table.remove(key).await,
    }
    .with_context(|| format!("removing a key from {}", table.info()))?;
    if context.json {
        output::json(&json!({ "table": table.info().to_string(), "removed": true }));
    } else {
        output::print("removed\n");
    }
    Ok(())
}

fn table_info(text: &str) -> Result<KeyValueTableInfo, Failure> {
    let (scope, name) = names::scoped(text, "key-value table", false)?;
    Ok(KeyValueTableInfo::new(scope, name))
}

/// Opens the table and checks the key against its key lengths.
async fn open(
    context: &Context,
    table: &str,
    key: &str,
    secondary: Option<&str>,
) -> anyhow::Result<(KeyValueTable, TableKey)> {
    let info = table_info(table)?;
    let table = KeyValueTable::open(&context.controller, info.clone())
        .await
        .with_context(|| format!("opening key-value table {info}"))?;
    let config = *table.configuration();
    let check = |part: &str, text: &str, length: u32| {
        if text.len() == length as usize {
            Ok(())
        } else {
            Err(Failure::invalid(format!(
                "the {part} {text:?} is {} bytes long; table {info} takes {part}s of exactly \
                 {length} bytes",
                text.len()
            )))
        }
    };
    check("key", key, config.primary_key_length)?;
    let secondary = secondary.unwrap_or("");
    check("secondary key", secondary, config.secondary_key_length)?;
    let key = TableKey::new(
        Bytes::from(key.as_bytes().to_vec()),
        Bytes::from(secondary.as_bytes().to_vec()),
    );
    Ok((table, key))
}

async fn get(
    context: &Context,
    table: &str,
    key: &str,
    secondary: Option<&str>,
) -> anyhow::Result<()> {
    let (table, table_key) = open(context, table, key, secondary).await?;
    let entry = table
        .get(&table_key)
        .await
        .with_context(|| format!("reading a key of {}", table.info()))?;
    let Some(entry) = entry else {
        return Err(Failure::not_found(format!(
            "key {key:?} does not exist in key-value table {}",
            table.info()
        ))
        .into());
    };
    if context.json {
        let mut object = serde_json::Map::new();
        object.insert("table".into(), table.info().to_string().into());
        output::bytes_field(&mut object, "key", &entry.key.primary);
        output::bytes_field(&mut object, "secondary", &entry.key.secondary);
        output::bytes_field(&mut object, "value", &entry.value);
        object.insert("version".into(), entry.version.0.into());
        output::json(&object.into());
    } else {
        output::print(&format!("{}\n", String::from_utf8_lossy(&entry.value)));
    }
    Ok(())
}

async fn list(context: &Context, scope: &str) -> anyhow::Result<()> {
    let scope = names::scope(scope)?;
    let mut tables = context
        .controller
        .list_key_value_tables(&scope)
        .await
        .with_context(|| format!("listing the key-value tables of {scope}"))?;
    tables.sort();
    if context.json {
        let items: Vec<_> = tables
            .iter()
            .map(|t| json!({ "scope": t.scope, "table": t.name }))
            .collect();
        output::json(&items.into());
    } else {
        let mut table = Table::new(&["TABLE"]);
        for info in tables {
            table.row(vec![info.to_string()]);
        }
        table.print();
    }
    Ok(())
}
