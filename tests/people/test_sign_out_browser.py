"""In real Chromium: cookies saved before signing out (a stolen copy) are useless after it,
while the same person's sign-in in another browser goes on."""

from tests.conftest import PASSWORD


def sign_in_remembered(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.check("input[name=remember]")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def lands_on_tickets(context, base: str) -> bool:
    page = context.new_page()
    try:
        page.goto(f"{base}/admin/tickets/")
        return "/login" not in page.url
    finally:
        page.close()


def test_cookies_saved_before_sign_out_do_not_sign_anyone_in(browser, live_app, live_server, make_user):
    make_user("agent", email="ana@example.com", name="Ana Agent")
    base = live_server.url
    laptop = browser.new_context()
    phone = browser.new_context()
    try:
        page = laptop.new_page()
        page.set_default_timeout(10_000)
        sign_in_remembered(page, base, "ana@example.com")
        saved = laptop.cookies()
        assert {"session", "remember_token"} <= {cookie["name"] for cookie in saved}
        sign_in_remembered(phone.new_page(), base, "ana@example.com")

        page.click("#user-menu")
        page.click("#sign-out")
        page.wait_for_url(lambda url: "/login" in url)
        assert "You are signed out." in page.inner_text("body")

        stolen = browser.new_context()
        try:
            stolen.add_cookies(saved)
            assert not lands_on_tickets(stolen, base)
            remember_only = [cookie for cookie in saved if cookie["name"] == "remember_token"]
            stolen.clear_cookies()
            stolen.add_cookies(remember_only)
            assert not lands_on_tickets(stolen, base)
        finally:
            stolen.close()
        assert lands_on_tickets(phone, base)  # signing out on the laptop kept the phone signed in
    finally:
        laptop.close()
        phone.close()
