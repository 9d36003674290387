"""The dashboard answers "what went wrong and why", in a real browser (headless Chromium, as in
test_dashboard_browser.py) at phone and desktop width: the request log (filters, CSV, no prompt text), errors
over time by class, latency and first-token percentiles over time, tokens per second, routing, one colour per
model across charts, Hour as the first range on a new install, keys made and revoked from the page, and a
deployment on a down Ollama shown down. Screenshots go to tests/output/dashboard/."""

from __future__ import annotations

import asyncio
import csv
import io

from tests.conftest import base, ollama_config
from tests.test_dashboard_browser import (  # noqa: F401  (fixtures)
    CHROMIUM, DESKTOP, ENV, PHONE, USER, admin_json, browser, chromium, pytestmark, seeded, sign_in,
)
from tests.test_errors import free_port


async def fits_phone(tab) -> None:
    assert await tab.eval("document.documentElement.scrollWidth") <= PHONE["width"]


async def test_request_log_filters_and_exports(seeded, browser):
    """/ui/requests lists the accounted requests; choosing "refused by policy" shows only the 403; the CSV
    button exports exactly the rows shown, and neither the page nor the CSV holds any prompt text."""
    client, url = seeded, base(seeded.server)
    for device, name in ((DESKTOP, "desktop-light"), (PHONE, "phone-dark")):
        tab = await browser()
        await tab.emulate(device, dark=device is PHONE)
        await sign_in(tab, url)
        await tab.goto(url + "/ui/requests")
        await tab.ready()
        rows = (await admin_json(client, "/admin/requests?since=24h"))["requests"]
        assert await tab.eval("document.querySelectorAll('#request-log tbody tr').length") == len(rows) == 11
        await tab.eval("document.querySelector('select[name=error_class]').value = 'policy'")
        renders = await tab.eval("document.body.dataset.renders")
        await tab.eval("document.querySelector('#request-filters button[type=submit]').click()")
        await tab.wait_for(f"document.body.dataset.renders !== '{renders}'")
        assert await tab.eval("location.search") == "?since=24h&error_class=policy"
        shown = await tab.eval("[...document.querySelectorAll('#request-log tbody tr')].map(r => r.dataset.requestId)")
        policy = [r["request_id"] for r in rows if r["error_class"] == "policy"]
        assert shown == policy and len(policy) == 1
        assert await tab.text("#request-log [data-field=status]") == "403"
        await tab.eval("document.querySelector('[data-csv=requests]').click()")
        exported = list(csv.reader(io.StringIO(await tab.eval("document.body.dataset.lastCsv"))))
        assert exported[0][:4] == ["When", "Key", "Model", "Face"] and len(exported) == 2
        assert exported[1][1:4] == ["phone", "thinking", "openai"] and exported[1][-1] == policy[0]
        page_text = await tab.eval("document.body.innerText")
        assert USER[0]["content"] not in page_text and USER[0]["content"] not in "".join(sum(exported, []))
        if device is PHONE:
            await fits_phone(tab)
        await tab.screenshot(f"requests-policy-{name}")
        assert tab.errors == []


async def test_overview_shows_why_and_how(seeded, browser):
    """A new install opens on Hour; errors by class (backend 1, policy 1, client 2), latency and first-token
    lines, tokens per second per local deployment and the routing table are drawn; a model keeps its colour
    when the chart metric changes; the models table exports as CSV. Phone and desktop."""
    client, url = seeded, base(seeded.server)
    tab = await browser()
    await sign_in(tab, url)
    for device, name in ((PHONE, "phone-light"), (DESKTOP, "desktop-dark")):
        await tab.emulate(device, dark=device is DESKTOP)
        await tab.goto(url + "/ui")
        await tab.ready()
        assert await tab.eval("document.querySelector('[data-range=\"1h\"]').getAttribute('aria-pressed')") == "true"
        legend = await tab.eval("document.querySelector('[data-card=errors] .legend').textContent")
        assert "backend 1" in legend and "policy 1" in legend and "client 2" in legend
        assert await tab.eval("document.querySelectorAll('[data-chart=latency] circle').length") >= 3
        speed = (await admin_json(client, "/admin/latency?since=1h&bucket_s=60"))["speed"]
        llama = next(s for s in speed if s["deployment"].startswith("ollama/llama3.1:8b"))
        row = f"tr[data-deployment='{llama['deployment']}'] [data-field=tokens_per_s]"
        assert await tab.text(row) == f"{llama['tokens_per_s']:.1f}"
        assert await tab.text("tr[data-route=direct] [data-field=requests]") == "8"
        colour = "[...document.querySelector('[data-chart=model]').parentElement.querySelectorAll('.legend span')]" \
                 ".find(s => s.textContent.startsWith('llama ')).querySelector('i').className"
        before = await tab.eval(colour)
        await tab.eval("document.querySelector('[data-metric=tokens]').click()")
        assert await tab.eval(colour) == before == "swatch s0"  # llama is the config's first model
        await tab.eval("document.querySelector('[data-metric=requests]').click()")
        await tab.eval("document.querySelector('[data-csv=models]').click()")
        exported = list(csv.reader(io.StringIO(await tab.eval("document.body.dataset.lastCsv"))))
        by_model = {r["group"]: r for r in (await admin_json(client, "/admin/usage?since=1h&group_by=model"))["rows"]}
        assert {r[0]: int(r[1]) for r in exported[1:]} == {k: v["requests"] for k, v in by_model.items()}
        if device is PHONE:
            await fits_phone(tab)
            # health first: the Backends card is the first thing on the page
            assert await tab.eval("document.querySelector('#glance .card h2').textContent") == "Backends"
        await tab.screenshot(f"overview-why-{name}")
    assert tab.errors == []


async def test_keys_made_and_revoked_from_the_page(seeded, browser):
    """On a phone: the Keys page says when each key was last used, what policy refused and how close it is to
    its limits; the form makes a key whose secret is shown once and works at once; two taps revoke it."""
    client, url = seeded, base(seeded.server)
    tab = await browser()
    await tab.emulate(PHONE, dark=False)
    await sign_in(tab, url)
    await tab.ready()
    facts = await tab.text("section[data-key=phone] [data-field=facts]")
    assert facts, (tab.errors, await tab.eval("document.body.innerText.slice(0, 1500)"))
    assert facts.startswith("last used ") and "1 refused by policy in 24 h" in facts and "from the config file" in facts
    lim = next(k for k in (await admin_json(client, "/admin/limits"))["keys"] if k["name"] == "laptop")
    worst = max(lim["requests_last_minute"] / 60, lim["tokens_today"] / 1000)
    assert f"{round(worst * 100)}% of" in await tab.text("section[data-key=laptop] .card-head")
    await tab.eval("document.querySelector('#new-key input[name=name]').focus()")
    await tab.send("Input.insertText", {"text": "tablet"})
    await tab.eval("document.querySelector('#new-key input[name=models]').focus()")
    await tab.send("Input.insertText", {"text": "llama"})
    await tab.eval("document.querySelector('#new-key button[type=submit]').click()")
    await tab.wait_for("document.querySelector('section[data-key=tablet]')")
    secret = await tab.text("#new-key-secret")
    assert secret.startswith("sk-lg-")
    await tab.screenshot("keys-new-key-phone-light")
    await fits_phone(tab)
    ok = await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER},
                           headers={"authorization": f"Bearer {secret}"})
    assert ok.status == 200
    await tab.eval("document.querySelector('[data-revoke=tablet]').click()")
    assert await tab.text("[data-revoke=tablet]") == "Tap again to revoke"
    await tab.eval("document.querySelector('[data-revoke=tablet]').click()")
    await tab.wait_for("document.querySelector('section[data-key=tablet] .badge.bad')")
    assert await tab.text("section[data-key=tablet] .badge.bad") == "revoked"
    gone = await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER},
                             headers={"authorization": f"Bearer {secret}"})
    assert gone.status == 401
    await tab.goto(url + "/ui/keys")  # a reload of the page shows the secret no more
    await tab.ready()
    assert await tab.eval("!document.getElementById('new-key-secret')")
    assert secret not in await tab.eval("document.body.innerText")
    await tab.screenshot("keys-revoked-phone-light")
    assert tab.errors == []


async def test_deployment_on_a_down_ollama_is_down_on_the_dashboard(ollama, gateway, browser):
    """An Ollama that does not answer: its chip is red and its deployment is counted and shown as down on the
    overview and the Backends page, beside a healthy one."""
    doc = ollama_config(ollama)
    doc["models"] = [doc["models"][0], {"name": "far", "provider": "ollama", "model": "llama3.1:8b",
                                        "api_base": f"http://127.0.0.1:{free_port()}"}]
    doc["router"]["ollama_poll_s"] = 1
    client = await gateway(doc)
    body = {}
    for _ in range(200):  # the first poll runs as the app starts
        body = await (await client.get("/health/backends")).json()
        if len(body["loaded_models"]) == 2:
            break
        await asyncio.sleep(0.02)
    far = next(d for d in body["deployments"] if d["name"] == "far")
    tab = await browser()
    await tab.emulate(PHONE, dark=True)
    await tab.goto(base(client.server) + "/ui")
    await tab.ready()
    assert await tab.text("#glance [data-field=summary]") == "1 of 2 deployments healthy, 1 down"
    assert await tab.eval(f"document.querySelector('#glance [data-deployment=\"{far['id']}\"] .dot').className") == "dot bad"
    await tab.screenshot("overview-ollama-down-phone-dark", full=False)
    await tab.goto(base(client.server) + "/ui/backends")
    await tab.ready()
    assert await tab.text(f"tr[data-deployment='{far['id']}'] [data-field=state]") == "down"
    await fits_phone(tab)
    await tab.screenshot("backends-ollama-down-phone-dark")
    assert tab.errors == []
