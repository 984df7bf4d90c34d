"""Word lists the fake records are drawn from."""

from __future__ import annotations

FIRST_NAMES = ("Ada", "Grace", "Alan", "Linus", "José", "Zoë", "Mika", "Noor", "Ivan", "Chen")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Torvalds", "Núñez", "Kowalski", "Okafor", "Sato")
COUNTRY_CODES = ("US", "GB", "DE", "FR", "BR", "IN", "JP", "NG", "CA", "AU")
PLANS = ("free", "pro", "enterprise")
TAGS = ("beta", "vip", "churn-risk", "newsletter", "trial", "partner")
ATTRIBUTE_NAMES = ("tier", "score", "beta_user", "seats", "signup_source", "nps")
DEVICE_TYPES = ("desktop", "mobile", "tablet")
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge")
LANDING_PAGES = ("/", "/pricing", "/blog/launch", "/docs/start", "/signup?ref=ad")
REFERRERS = ("https://search.example.org/?q=analytics", "https://news.example.net/", "direct")
UTM_SOURCES = ("newsletter", "search", "social", "partner")
UTM_MEDIUMS = ("email", "cpc", "organic", "referral")
EVENT_TYPES = ("page_view", "sign_up", "purchase", "click", "logout", "add_to_cart")
CURRENCIES = ("USD", "EUR", "GBP", "JPY")
CHANNELS = ("email", "search", "social", "display")
CAMPAIGN_STATUSES = ("draft", "active", "paused", "completed")
CAMPAIGN_WORDS = ("Spring", "Launch", "Retarget", "Holiday", "Brand", "Webinar")
