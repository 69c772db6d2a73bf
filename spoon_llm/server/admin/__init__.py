"""The gateway's admin API (``/api/admin``), admin JWT sign-in, and the tamper-evident audit log.

Modules: :mod:`.api` (the FastAPI app and its auth), ``routes_*`` (one area each), :mod:`.jwt_auth`,
:mod:`.audit` (the HMAC chain), :mod:`.store` (shared settings and the audit log in SQLite or Redis),
:mod:`.runtime` (applying changes on every replica), :mod:`.insight` (request metrics), :mod:`.commands`
(``spoon-llm audit verify``). Nothing here is imported by ``import spoon_llm``; the gateway loads it at start-up.
"""
