"""auth.py: where the URL and secrets come from, the device key, the device-token store."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path

import pytest

from ocnb.auth import (
    Credentials,
    DeviceIdentity,
    DeviceTokenStore,
    MemoryDeviceTokens,
    gateway_key,
    resolve_url,
)
from ocnb.secret import Secret


def test_url_precedence_argument_then_environment_then_default() -> None:
    env = {"OPENCLAW_GATEWAY_URL": "ws://a:1/", "GATEWAY_WS_URL": "ws://b:2/"}
    assert resolve_url("ws://arg:3/", env) == "ws://arg:3/"
    assert resolve_url(None, env) == "ws://a:1/"
    assert resolve_url(None, {"GATEWAY_WS_URL": "ws://b:2/"}) == "ws://b:2/"
    assert resolve_url(None, {}) == "ws://127.0.0.1:18789/"


@pytest.mark.parametrize("url", ["http://host:18789/", "host:18789", "ws://"])
def test_bad_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError, match="ws://"):
        resolve_url(url, {})


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(ValueError, match="token=") as caught:
        resolve_url("ws://user:hunter2@h/", {})
    assert "hunter2" not in str(caught.value)


def test_credentials_take_token_and_password_from_the_environment() -> None:
    env = {"OPENCLAW_GATEWAY_TOKEN": "env-tok", "OPENCLAW_GATEWAY_PASSWORD": "env-pw"}
    creds = Credentials.resolve(env=env)
    assert creds.token == Secret("env-tok") and creds.password == Secret("env-pw")
    assert Credentials.resolve(token="arg-tok", env=env).token == Secret("arg-tok")


def test_connect_auth_prefers_the_shared_token_over_a_device_token() -> None:
    device_token = Secret("dev-tok")
    assert Credentials("ws://h/", Secret("tok")).connect_auth(device_token) == {"token": "tok"}
    assert Credentials("ws://h/").connect_auth(device_token) == {"deviceToken": "dev-tok"}
    assert Credentials("ws://h/", password=Secret("pw")).connect_auth() == {"password": "pw"}


def test_secrets_never_show_in_repr_str_or_pickle() -> None:
    creds = Credentials.resolve("ws://h:1/", token="tok-abc", password="pw-xyz", env={})
    for text in (repr(creds), str(creds), repr(creds.token), f"{creds.password}"):
        assert "tok-abc" not in text and "pw-xyz" not in text
    with pytest.raises(TypeError):
        pickle.dumps(creds.token)


def test_redact_masks_every_known_secret() -> None:
    creds = Credentials("ws://h/", Secret("tok-abc"), Secret("pw-xyz"))
    text = creds.redact("tok-abc and pw-xyz and dev-1", Secret("dev-1"))
    assert text == "******** and ******** and ********"


def test_the_device_key_is_created_once_private_and_reused(private_environment: Path) -> None:
    first = DeviceIdentity.load_or_create()
    key_file = private_environment / "device-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(private_environment.stat().st_mode) == 0o700
    again = DeviceIdentity.load_or_create()
    assert again.device_id == first.device_id and again.public_key == first.public_key
    assert len(first.device_id) == 64
    assert first.device_id[:12] in repr(first) and "PRIVATE" not in repr(first)
    with pytest.raises(TypeError):
        pickle.dumps(first)


def test_a_foreign_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="device key"):
        DeviceIdentity.load_or_create(path)


def test_device_tokens_are_filed_per_gateway_device_and_role(private_environment: Path) -> None:
    store = DeviceTokenStore()
    store.put("ws://127.0.0.1:18789", "dev1", "operator", Secret("t1"), ("operator.read",))
    store.put("wss://remote.example/", "dev1", "operator", Secret("t2"), ("operator.read",))
    assert store.get("ws://127.0.0.1:18789/", "dev1", "operator") == Secret("t1")
    assert store.get("wss://REMOTE.example:443", "dev1", "operator") == Secret("t2")
    assert store.get("ws://127.0.0.1:18789/", "dev2", "operator") is None
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    store.forget("ws://127.0.0.1:18789/", "dev1", "operator")
    assert store.get("ws://127.0.0.1:18789/", "dev1", "operator") is None
    assert "t2" not in repr(store)


def test_the_same_token_keeps_its_original_scopes(private_environment: Path) -> None:
    store = DeviceTokenStore()
    store.put("ws://h:1/", "d", "operator", Secret("t"), ("operator.read", "operator.write"))
    store.put("ws://h:1/", "d", "operator", Secret("t"), ("operator.read",))
    assert '"operator.write"' in store.path.read_text()


def test_memory_device_tokens_are_filed_alike_and_never_written(private_environment: Path) -> None:
    store = MemoryDeviceTokens()
    store.put("ws://127.0.0.1:18789", "dev1", "operator", Secret("t1"), ("operator.read",))
    assert store.get("ws://127.0.0.1:18789/", "dev1", "operator") == Secret("t1")
    assert store.get("ws://127.0.0.1:18789/", "dev2", "operator") is None
    store.forget("ws://127.0.0.1:18789/", "dev1", "operator")
    assert store.get("ws://127.0.0.1:18789/", "dev1", "operator") is None
    assert not private_environment.exists() and "t1" not in repr(store)


def test_a_corrupt_token_file_is_a_clear_error(private_environment: Path) -> None:
    store = DeviceTokenStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(ValueError, match="device tokens"):
        store.get("ws://h:1/", "d", "operator")


def test_gateway_key_normalises_default_ports_and_case() -> None:
    assert gateway_key("ws://LocalHost/") == "ws://localhost:80/"
    assert gateway_key("wss://h.example/gw/") == "wss://h.example:443/gw"
