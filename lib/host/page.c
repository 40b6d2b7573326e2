/*
 * The page `vm serve` shows at /: plain HTML, a style sheet and a little
 * JavaScript, all from here (no build step, nothing from elsewhere).  The
 * script reads /v1/vms every few seconds and writes what it finds with
 * textContent only: a VM's name or a snapshot's description is text,
 * never markup.
 */
#include "host/page.h"

#include <string.h>

static const char html[] =
	"<!doctype html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>vm serve</title>\n"
	"<link rel=\"stylesheet\" href=\"/app.css\">\n"
	"</head>\n"
	"<body>\n"
	"<header><h1>VMs</h1><p id=\"status\">loading</p>\n"
	"<form id=\"auth\"><input id=\"token\" type=\"password\" "
	"placeholder=\"control token\" autocomplete=\"off\">"
	"<button type=\"submit\">use</button></form></header>\n"
	"<main>\n"
	"<table id=\"vms\">\n"
	"<thead><tr><th>VM</th><th>state</th><th>uptime</th>"
	"<th>last job</th><th>last snapshot</th><th class=\"ctl\">control</th></tr></thead>\n"
	"<tbody></tbody>\n"
	"</table>\n"
	"</main>\n"
	"<script src=\"/app.js\"></script>\n"
	"</body>\n"
	"</html>\n";

static const char css[] =
	"body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }\n"
	"header { display: flex; align-items: baseline; gap: 1em; padding: .5em 1em; background: #234; color: #fff; }\n"
	"header h1 { font-size: 1.2em; margin: 0; }\n"
	"header p { margin: 0; opacity: .8; }\n"
	"main { padding: 1em; }\n"
	"table { border-collapse: collapse; width: 100%; background: #fff; }\n"
	"th, td { text-align: left; padding: .4em .6em; border-bottom: 1px solid #ddd; }\n"
	".state { font-weight: 600; }\n"
	".state-running { color: #070; }\n"
	".state-paused, .state-starting, .state-stopping, .state-saved { color: #a60; }\n"
	".state-stopped { color: #666; }\n"
	".state-stale { color: #b00; }\n"
	".bad { color: #b00; }\n"
	"#auth { margin-left: auto; display: flex; gap: .3em; }\n"
	"#auth input { width: 10em; }\n"
	"body:not(.control) .ctl { display: none; }\n"
	"td.ctl button { margin-right: .3em; }\n"
	"@media (max-width: 600px) {\n"
	"  thead { display: none; }\n"
	"  tr { display: block; border-bottom: 2px solid #ccc; padding: .3em 0; }\n"
	"  td { display: block; border: 0; padding: .1em .6em; }\n"
	"  td::before { content: attr(data-label) \": \"; color: #666; }\n"
	"}\n";

static const char js[] =
	"\"use strict\";\n"
	"const REFRESH_MS = 5000;\n"
	"function duration(s) {\n"
	"  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24,\n"
	"    m = Math.floor(s / 60) % 60;\n"
	"  return (d ? d + \"d \" : \"\") + h + \"h \" + String(m).padStart(2, \"0\") + \"m\";\n"
	"}\n"
	"function when(t) {\n"
	"  return t ? new Date(t * 1000).toLocaleString() : \"?\";\n"
	"}\n"
	"function cell(tr, label, text, cls) {\n"
	"  const td = document.createElement(\"td\");\n"
	"  td.dataset.label = label;\n"
	"  td.textContent = text;\n"
	"  if (cls) td.className = cls;\n"
	"  tr.appendChild(td);\n"
	"}\n"
	"function token() {\n"
	"  return sessionStorage.getItem(\"vm-token\") || \"\";\n"
	"}\n"
	"async function act(name, action) {\n"
	"  const status = document.getElementById(\"status\");\n"
	"  status.textContent = action + \" \" + name + \"...\";\n"
	"  try {\n"
	"    const r = await fetch(\"/v1/vms/\" + encodeURIComponent(name) + \"/\" + action, {\n"
	"      method: \"POST\", headers: { Authorization: \"Bearer \" + token() } });\n"
	"    const j = await r.json();\n"
	"    status.textContent = action + \" \" + name + \": \" + (j.error || j.stopped || \"started\");\n"
	"    status.className = r.ok ? \"\" : \"bad\";\n"
	"  } catch (e) {\n"
	"    status.textContent = action + \" \" + name + \": \" + e.message;\n"
	"    status.className = \"bad\";\n"
	"  }\n"
	"  refresh();\n"
	"}\n"
	"function buttons(tr, name, state) {\n"
	"  const td = document.createElement(\"td\");\n"
	"  td.className = \"ctl\";\n"
	"  td.dataset.label = \"control\";\n"
	"  const up = [\"running\", \"paused\", \"starting\"].includes(state);\n"
	"  for (const a of up ? [\"stop\", \"kill\"] : [\"start\"]) {\n"
	"    const b = document.createElement(\"button\");\n"
	"    b.textContent = a;\n"
	"    b.dataset.action = a;\n"
	"    b.addEventListener(\"click\", () => act(name, a));\n"
	"    td.appendChild(b);\n"
	"  }\n"
	"  tr.appendChild(td);\n"
	"}\n"
	"function row(v) {\n"
	"  const tr = document.createElement(\"tr\");\n"
	"  const dir = (v.hostdir || \"\").split(\"/\").pop();\n"
	"  tr.dataset.vm = dir;\n"
	"  cell(tr, \"VM\", dir === v.name ? dir : dir + \" (\" + v.name + \")\");\n"
	"  cell(tr, \"state\", v.state, \"state state-\" + v.state);\n"
	"  cell(tr, \"uptime\", typeof v.uptime === \"number\" ? duration(v.uptime) : \"-\");\n"
	"  const j = v.last_job;\n"
	"  cell(tr, \"last job\", j ? j.name + \": exit \" + j.status + \", \" + when(j.time) : \"none\",\n"
	"    j && j.status !== 0 ? \"bad\" : \"\");\n"
	"  const l = v.last;\n"
	"  cell(tr, \"last snapshot\", l ? l.name + \", \" + when(l.time) +\n"
	"    (l.description ? \" (\" + l.description + \")\" : \"\") : \"none\");\n"
	"  buttons(tr, dir, v.state);\n"
	"  return tr;\n"
	"}\n"
	"async function refresh() {\n"
	"  const status = document.getElementById(\"status\");\n"
	"  try {\n"
	"    const r = await fetch(\"/v1/vms\", { cache: \"no-store\" });\n"
	"    if (!r.ok) throw new Error(\"HTTP \" + r.status);\n"
	"    const vms = await r.json();\n"
	"    document.querySelector(\"#vms tbody\").replaceChildren(...vms.map(row));\n"
	"    status.textContent = vms.length + (vms.length === 1 ? \" VM\" : \" VMs\") +\n"
	"      \", as of \" + new Date().toLocaleTimeString();\n"
	"    status.className = \"\";\n"
	"  } catch (e) {\n"
	"    status.textContent = \"cannot read the VMs: \" + e.message;\n"
	"    status.className = \"bad\";\n"
	"  }\n"
	"}\n"
	"function useToken(t) {\n"
	"  if (t) sessionStorage.setItem(\"vm-token\", t);\n"
	"  else sessionStorage.removeItem(\"vm-token\");\n"
	"  document.body.classList.toggle(\"control\", !!t);\n"
	"}\n"
	"/* a bookmark may carry the token after #token= (never sent to the server) */\n"
	"if (location.hash.startsWith(\"#token=\")) {\n"
	"  useToken(decodeURIComponent(location.hash.slice(7)));\n"
	"  history.replaceState(null, \"\", location.pathname);\n"
	"} else {\n"
	"  useToken(token());\n"
	"}\n"
	"document.getElementById(\"auth\").addEventListener(\"submit\", (e) => {\n"
	"  e.preventDefault();\n"
	"  const f = document.getElementById(\"token\");\n"
	"  useToken(f.value);\n"
	"  f.value = \"\";\n"
	"});\n"
	"refresh();\n"
	"setInterval(refresh, REFRESH_MS);\n";

static const struct page_file files[] = {
	{ "/", "text/html; charset=utf-8", html, sizeof(html) - 1 },
	{ "/index.html", "text/html; charset=utf-8", html, sizeof(html) - 1 },
	{ "/app.css", "text/css; charset=utf-8", css, sizeof(css) - 1 },
	{ "/app.js", "text/javascript; charset=utf-8", js, sizeof(js) - 1 },
};

const struct page_file *page_find(const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (!strcmp(files[i].path, path))
			return &files[i];
	return NULL;
}
