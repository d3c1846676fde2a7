//! End-to-end tests: one binary (see STYLE.md) with a module per feature. Each test starts
//! the real router on 127.0.0.1:0 (or the real binary) and talks HTTP to it.

#![allow(clippy::unwrap_used)]

mod common;

mod access;
mod agents_tokens;
mod api_style;
mod audit;
mod binary;
mod binary_stop;
mod browser;
mod channel_approvers;
mod channel_world;
mod channels_delivery;
mod channels_discord;
mod channels_telegram;
mod channels_votes;
mod cli;
mod cli_admin;
mod cli_export_jobs;
mod cli_identity;
mod cli_leases;
mod cli_run;
mod cli_shell;
mod client_crate;
mod console;
mod jobs;
mod lease_world;
mod leases;
mod leases_approvals;
mod mcp;
mod mcp_stdio;
mod metrics;
mod migrate;
mod openapi;
mod proxy;
mod proxy_leaks;
mod proxy_services;
mod receiver;
mod refusals;
mod sdks;
mod secrets;
mod several_daemons;
mod storage;
mod upgrade;
mod walkthrough;
mod webhook_delivery;
mod webhook_safety;
