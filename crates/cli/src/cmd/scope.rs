//! `pravaha scope create|list|delete`.

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::output::{self, Table};
use super::{names, Context, Failure};

#[derive(Subcommand, Debug, Clone)]
pub enum ScopeCommand {
    /// Create a scope (succeeds if it exists already)
    Create {
        /// Scope name: letters, digits, '.' and '-'
        scope: String,
    },
    /// List every scope
    List,
    /// Delete an empty scope
    Delete { scope: String },
}

pub async fn run(context: &Context, command: ScopeCommand) -> anyhow::Result<()> {
    let controller = &context.controller;
    match command {
        ScopeCommand::Create { scope } => {
            let scope = names::scope(&scope)?;
            let created = controller
                .create_scope(&scope)
                .await
                .with_context(|| format!("creating scope {scope}"))?;
            if context.json {
                output::json(&json!({ "scope": scope, "created": created }));
            } else if created {
                output::print(&format!("created scope {scope}\n"));
            } else {
                output::print(&format!("scope {scope} exists already\n"));
            }
        }
        ScopeCommand::List => {
            let mut scopes = controller.list_scopes().await.context("listing scopes")?;
            scopes.sort();
            if context.json {
                let items: Vec<_> = scopes
                    .iter()
                    .map(|scope| json!({ "scope": scope }))
                    .collect();
                output::json(&items.into());
            } else {
                let mut table = Table::new(&["SCOPE"]);
                for scope in scopes {
                    table.row(vec![scope]);
                }
                table.print();
            }
        }
        ScopeCommand::Delete { scope } => {
            let scope = names::scope(&scope)?;
            let deleted = controller
                .delete_scope(&scope)
                .await
                .with_context(|| format!("deleting scope {scope}"))?;
            if !deleted {
                return Err(Failure::not_found(format!("scope {scope} does not exist")).into());
            }
            if context.json {
                output::json(&json!({ "scope": scope, "deleted": true }));
            } else {
                output::print(&format!("deleted scope {scope}\n"));
            }
        }
    }
    Ok(())
}
