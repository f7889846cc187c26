"""The review pages in Chromium: log in, filter, correct a message (new intent, entity by
selecting words), rate a reply, answer as an agent and hand back; CSRF and login enforced."""

import re

import httpx
import pytest
from playwright.sync_api import expect

from bot.admin.auth import USERS_VARIABLE, hash_password


@pytest.fixture
def accounts(monkeypatch):
    monkeypatch.setenv(USERS_VARIABLE, "sam=" + hash_password("s3cret", rounds=1000))


def say(base: str, sender: str, text: str) -> None:
    assert httpx.post(base + "/webhooks/rest/webhook", json={"sender": sender, "message": text}).status_code == 200


def log_in(page, base: str) -> None:
    page.goto(base + "/admin")
    expect(page).to_have_url(base + "/admin/login")
    page.get_by_label("Name").fill("sam")
    page.get_by_label("Password").fill("s3cret")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()


def test_review_annotate_and_agent_console(accounts, live_server, browser, tmp_path):
    say(live_server, "ann", "do you take paypal")
    say(live_server, "ann", "I want to talk to a human")
    say(live_server, "bob", "where is my order B-2001?")
    page = browser.new_page()
    log_in(page, live_server)
    expect(page.get_by_role("link", name="rest:ann")).to_be_visible()
    page.get_by_label("handoff").check()
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="rest:ann")).to_be_visible()
    expect(page.get_by_role("link", name="rest:bob")).to_have_count(0)
    page.get_by_role("link", name="rest:ann").click()

    message = page.locator("section.user", has_text="do you take paypal")
    message.get_by_text("Correct", exact=True).click()
    message.get_by_label(re.compile("intent of message")).fill("payment_methods")
    page.evaluate("""() => {
        const text = document.querySelector('section.user [data-text]').firstChild;
        const range = document.createRange();
        range.setStart(text, 12); range.setEnd(text, 18);  // "paypal"
        getSelection().removeAllRanges(); getSelection().addRange(range);
    }""")
    message.get_by_label(re.compile("entity type for message")).select_option("product")
    message.get_by_role("button", name="Mark selection").click()
    expect(message.locator("[data-entity-list]")).to_have_text("entities: product = paypal")
    message.get_by_role("button", name="Save correction").click()
    expect(page.locator("section.user", has_text="do you take paypal")).to_contain_text("annotated by sam: payment_methods · product = paypal")

    reply = page.locator("section.bot").first
    reply.get_by_text("Rate", exact=True).click()
    reply.get_by_label("bad").check()
    reply.get_by_label("What an agent would have said").fill("We take PayPal, cards and invoices.")
    reply.get_by_role("button", name="Save rating").click()
    expect(page.locator("section.bot").first).to_contain_text("sam: bad · better: “We take PayPal, cards and invoices.”")

    page.get_by_label("Reply to the customer").fill("Hi Ann, Sam here. How can I help?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("section.agent")).to_contain_text("Hi Ann, Sam here.")
    page.get_by_role("button", name="Hand back to the bot").click()
    expect(page.get_by_role("region", name="Agent console")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "admin-transcript.png"), full_page=True)

    page.get_by_role("link", name="To label").click()
    expect(page.get_by_role("link", name="where is my order B-2001?")).to_be_visible()
    expect(page.get_by_role("link", name="do you take paypal")).to_have_count(0)  # annotated: off the queue

    transcript = httpx.get(live_server + "/conversations/rest:ann", headers={"Authorization": "Bearer test-token"}).json()
    first = next(e for e in transcript["events"] if e["kind"] == "user")
    assert first["text"] == "do you take paypal" and first["intent"] != "payment_methods"  # the log is untouched


def test_posts_need_a_session_and_its_csrf_token(accounts, live_server, browser):
    say(live_server, "cat", "hi")
    with httpx.Client(base_url=live_server) as client:
        anonymous = client.post("/admin/events/2/annotate", data={"intent": "greet"})
        assert anonymous.status_code == 303 and anonymous.headers["location"] == "/admin/login"
        assert client.post("/admin/login", data={"name": "sam", "password": "wrong"}).headers["location"] == "/admin/login?failed=1"
        assert client.post("/admin/login", data={"name": "sam", "password": "s3cret"}).status_code == 303
        forged = client.post("/admin/events/2/annotate", data={"intent": "greet", "csrf": "guess"})
        assert forged.status_code == 403 and "CSRF" in forged.text
