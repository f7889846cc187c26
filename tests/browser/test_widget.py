"""The chat widget in a real browser (Debian's Chromium) against a real server and model."""

import re

from playwright.sync_api import expect

MOBILE = {"width": 390, "height": 760}


def open_chat(page, base: str) -> None:
    page.goto(base + "/")
    page.get_by_role("button", name="Open chat").click()
    expect(page.get_by_role("dialog", name="Chat with us")).to_be_visible()


def say(page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def test_order_status_quick_reply_reload_and_no_html_injection(live_server, browser, tmp_path):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_chat(page, live_server)
    log = page.get_by_role("log", name="Conversation")
    # Opening the chat puts the keyboard in the message box.
    expect(page.get_by_label("Message")).to_be_focused()

    say(page, "hi")
    expect(page.get_by_role("group", name="Suggested replies").get_by_role("button")).to_have_count(3)
    expect(log.locator(".slmbot-bot time").first).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    page.get_by_role("button", name="Track an order").click()
    expect(log.locator(".slmbot-user .slmbot-text").nth(1)).to_have_text("Track an order")
    expect(log.locator(".slmbot-bot").nth(1)).to_contain_text("order number")
    say(page, "B-2001")
    expect(log.locator(".slmbot-bot").nth(2)).to_contain_text("has shipped")

    attack = "<img src=x onerror=alert(1)>"
    say(page, attack)
    expect(log.locator(".slmbot-bot")).to_have_count(4)
    expect(log.locator(".slmbot-user .slmbot-text").last).to_have_text(attack)
    assert log.locator("img").count() == 0 and dialogs == []

    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Chat with us")).to_be_hidden()
    expect(page.get_by_role("button", name="Open chat")).to_be_focused()
    page.screenshot(path=str(tmp_path / "widget-closed.png"))

    page.reload()
    open_chat(page, live_server)
    expect(log.locator(".slmbot-user .slmbot-text")).to_have_text(["hi", "Track an order", "B-2001", attack])
    expect(log.locator(".slmbot-bot").nth(2)).to_contain_text("has shipped")
    page.screenshot(path=str(tmp_path / "widget-history.png"))
    assert (tmp_path / "widget-history.png").stat().st_size > 0


def test_keyboard_only_and_narrow_viewport(live_server, browser, tmp_path):
    page = browser.new_page(viewport=MOBILE)
    page.goto(live_server + "/")
    launcher = page.get_by_role("button", name="Open chat")
    launcher.focus()
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Chat with us")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box is not None and box["width"] == MOBILE["width"] and box["height"] == MOBILE["height"]
    page.keyboard.type("where is my order B-2001?")
    page.keyboard.press("Enter")
    expect(page.get_by_role("log", name="Conversation").locator(".slmbot-bot")).to_contain_text("has shipped")
    page.screenshot(path=str(tmp_path / "widget-mobile.png"))


def test_messages_fall_back_to_rest_while_the_socket_is_down(live_server, browser):
    context = browser.new_context()
    # Refuse the WebSocket handshake: the widget must still deliver over REST.
    context.route("**/ws/chat*", lambda route: route.abort())
    page = context.new_page()
    page.route_web_socket("**/ws/chat*", lambda ws: ws.close())
    open_chat(page, live_server)
    say(page, "where is my order B-2001?")
    expect(page.get_by_role("log", name="Conversation").locator(".slmbot-bot")).to_contain_text("has shipped")
    expect(page.locator(".slmbot-status")).to_have_text("Reconnecting\u2026")
    context.close()
