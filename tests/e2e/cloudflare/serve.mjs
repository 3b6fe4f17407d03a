#!/usr/bin/env node
// Runs the 8 built Workers (functions/*/build) in one Miniflare instance: the fast harness for
// end-to-end tests against a base URL.
//
//   node tests/e2e/cloudflare/serve.mjs [--port N] [--exit-with-parent]
//
// --port: default 8787 (or PORT); 0 picks a free port. --exit-with-parent: also stop when the
// process that started this one exits (for test harnesses, so a killed runner never leaves
// workerd holding the port; do not use it when starting this script detached).
//
// The gateway listens on 127.0.0.1; the mode Workers are reached through the service bindings
// declared in the wrangler.toml files, which are also where the compatibility date, the KV, D1
// and Durable Object bindings and the [vars] defaults come from. KV (CACHE, DATA) and the D1
// database (DB) are in memory and shared by all Workers, the database fresh with the schema of
// migrations/ applied at every start; the Counters Durable Objects are admin's, in memory too,
// bound as COUNTERS in every Worker. Every variable listed in scripts/cloudflare/config-vars that is set in the
// environment is bound to every Worker. When ready it prints exactly one line on stdout:
//
//   miniflare listening on http://127.0.0.1:PORT
//
// Logs go to stderr. It stops on SIGINT/SIGTERM (and see --exit-with-parent).
// Build first with scripts/cloudflare/build.

import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare, Log, LogLevel } from "miniflare";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const FUNCTIONS = ["gateway", "chat", "agent", "knowledge", "search", "code", "thinking", "research", "admin"];

function fail(message) {
  process.stderr.write(`serve.mjs: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  let port = process.env.PORT ?? "8787";
  let exitWithParent = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--port") port = argv[++i];
    else if (argv[i].startsWith("--port=")) port = argv[i].slice("--port=".length);
    else if (argv[i] === "--exit-with-parent") exitWithParent = true;
    else fail(`unknown argument: ${argv[i]}`);
  }
  if (!/^\d+$/.test(port ?? "") || Number(port) > 65535) fail(`not a port: ${port}`);
  return { port: Number(port), exitWithParent };
}

// Reads the few wrangler.toml keys the harness needs. Not a TOML parser: it understands the
// shape our configs use (top-level `key = "string"`, [vars], [[services]], [[kv_namespaces]],
// [[d1_databases]], [[durable_objects.bindings]], and [[migrations]]' `new_sqlite_classes`).
const TABLE_LISTS = ["services", "kv_namespaces", "d1_databases", "durable_objects.bindings", "migrations"];
function readWranglerToml(file) {
  const config = { vars: {}, lists: {}, compatibilityDate: undefined };
  let section = "";
  let table = null;
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.replace(/\s+#.*$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const header = line.match(/^\[\[?([\w.]+)\]\]?$/);
    if (header) {
      section = header[1];
      table = {};
      if (TABLE_LISTS.includes(section)) (config.lists[section] ??= []).push(table);
      continue;
    }
    const classes = line.match(/^new_sqlite_classes\s*=\s*\[(.*)\]$/);
    if (classes && section === "migrations") {
      table.newSqliteClasses = [...classes[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]);
      continue;
    }
    const pair = line.match(/^(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"$/);
    if (!pair) continue;
    const [, key, value] = pair;
    if (section === "" && (key === "compatibility_date" || key === "name")) config[key] = value;
    else if (section === "vars") config.vars[key] = value;
    else if (table && TABLE_LISTS.includes(section)) table[key] = value;
  }
  const list = (name) => config.lists[name] ?? [];
  config.compatibilityDate = config.compatibility_date;
  config.services = Object.fromEntries(list("services").filter((s) => s.binding && s.service).map((s) => [s.binding, s.service]));
  config.kv = list("kv_namespaces").map((k) => k.binding).filter(Boolean);
  config.d1 = list("d1_databases").filter((d) => d.binding && d.database_id);
  config.durableObjects = list("durable_objects.bindings").filter((d) => d.name && d.class_name);
  config.sqliteClasses = list("migrations").flatMap((m) => m.newSqliteClasses ?? []);
  return config;
}

function configVarsFromEnv() {
  const names = readFileSync(path.join(ROOT, "scripts/cloudflare/config-vars"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const vars = {};
  for (const name of names) {
    const value = process.env[name];
    if (value) vars[name] = value;
  }
  return vars;
}

// Miniflare's own log and the Workers' console output go to stderr: stdout carries only the
// "listening" line.
class StderrLog extends Log {
  log(message) {
    process.stderr.write(`${message}\n`);
  }
}

const { port, exitWithParent } = parseArgs(process.argv.slice(2));
const envVars = configVarsFromEnv();

const configs = FUNCTIONS.map((name) => {
  const configFile = name === "gateway" ? path.join(ROOT, "wrangler.toml") : path.join(ROOT, "functions", name, "wrangler.toml");
  return { name, config: readWranglerToml(configFile) };
});
// A Durable Object class's storage is SQLite when its script's migrations say so; every binding
// to the class must say the same to Miniflare.
const sqliteClasses = new Set(configs.flatMap(({ config }) => config.sqliteClasses.map((c) => `${config.name}/${c}`)));

const workers = configs.map(({ name, config }) => {
  const dir = path.join(ROOT, "functions", name);
  const script = path.join(dir, "build", "index.js");
  if (!existsSync(script)) fail(`${path.relative(ROOT, script)} is missing: run scripts/cloudflare/build`);
  return {
    name: `opencode-${name}`,
    modules: true,
    scriptPath: script,
    modulesRoot: path.join(dir, "build"),
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: config.compatibilityDate,
    bindings: { ...config.vars, ...envVars },
    serviceBindings: config.services,
    // The same namespace id in every Worker: one shared in-memory store per binding.
    kvNamespaces: Object.fromEntries(config.kv.map((binding) => [binding, `opencode-${binding.toLowerCase()}`])),
    // The same database id in every Worker: one shared in-memory database.
    d1Databases: Object.fromEntries(config.d1.map((d) => [d.binding, d.database_id])),
    durableObjects: Object.fromEntries(
      config.durableObjects.map((d) => {
        const useSQLite = sqliteClasses.has(`${d.script_name ?? config.name}/${d.class_name}`);
        return [d.name, { className: d.class_name, scriptName: d.script_name, useSQLite }];
      }),
    ),
  };
});

// Applies every migrations/*.sql file, in order, to the (fresh, in-memory) D1 database. Each
// file goes as one query, which Miniflare's D1 runs statement by statement (D1's `exec` would
// split it at every line instead).
async function migrate() {
  const dir = path.join(ROOT, "migrations");
  const withDb = configs.find(({ config }) => config.d1.some((d) => d.binding === "DB"));
  if (!withDb) return;
  const db = await mf.getD1Database("DB", withDb.config.name);
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    await db.prepare(readFileSync(path.join(dir, file), "utf8")).run();
  }
}

const started = performance.now();
const mf = new Miniflare({
  host: "127.0.0.1",
  port,
  cf: false,
  log: new StderrLog(LogLevel.WARN),
  handleRuntimeStdio(stdout, stderr) {
    stdout.pipe(process.stderr);
    stderr.pipe(process.stderr);
  },
  workers,
});

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    process.exit(code);
  }
}
process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));
// A test runner killed without cleaning up must not leave workerd holding the port. Node
// caches process.ppid at startup, so poll whether that parent still exists instead.
if (exitWithParent) {
  const parent = process.ppid;
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      stop(0);
    }
  }, 500).unref();
}

try {
  const url = await mf.ready;
  await migrate();
  process.stderr.write(`serve.mjs: ready in ${Math.round(performance.now() - started)} ms\n`);
  process.stdout.write(`miniflare listening on http://127.0.0.1:${url.port}\n`);
} catch (error) {
  process.stderr.write(`serve.mjs: could not start: ${error?.stack ?? error}\n`);
  await stop(1);
}
