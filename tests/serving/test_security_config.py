"""serve.yaml ``security:``: the signature policy is checked when the configuration
loads (keys read, paths resolved against the file), never at the first request."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.artifacts.signing import generate_key_pair
from modelport.errors import ConfigurationError
from modelport.serving.config import ServeSpec, load_spec


def _write(tmp_path: Path, security: str) -> Path:
    path = tmp_path / "conf" / "serve.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"models:\n  - uri: models:/iris@champion\nsecurity: {security}\n")
    return path


def test_policy_with_keys_relative_to_the_file(tmp_path: Path) -> None:
    _, pub, key_id = generate_key_pair(tmp_path / "conf" / "keys", "release")
    spec = load_spec(_write(tmp_path, "{require_signature: true, verify_keys: "
                                      "[keys/release.pub]}"), [])
    assert spec.security.verify_keys == [str(pub.resolve())]
    keys = spec.signature_keys()
    assert keys is not None and keys.ids == [key_id]
    # what the workers get (JSON in the environment) still carries the policy
    again = ServeSpec.model_validate_json(spec.model_dump_json()).signature_keys()
    assert again is not None and again.ids == [key_id]


def test_no_policy_by_default(tmp_path: Path) -> None:
    assert load_spec(None, ["iris@champion"]).signature_keys() is None


def test_policy_falls_back_to_the_env_keys(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, pub, key_id = generate_key_pair(tmp_path, "env")
    monkeypatch.setenv("MODELPORT_VERIFY_KEYS", str(pub))
    keys = load_spec(_write(tmp_path, "{require_signature: true}"), []).signature_keys()
    assert keys is not None and keys.ids == [key_id]


@pytest.mark.parametrize(("security", "message"), [
    ("{require_signature: true}", "no key to verify signatures"),
    ("{require_signature: true, verify_keys: [missing.pub]}", "cannot read public key"),
    ("{require_signature: true, verify_keys: [keys/release.key]}", "holds a private key"),
    ("{verify_keys: [keys/release.pub]}", "require_signature is false"),
    ("{require_signatures: true}", "security.require_signatures"),
])
def test_bad_policies_stop_the_server_before_it_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, security: str, message: str) -> None:
    monkeypatch.delenv("MODELPORT_VERIFY_KEYS", raising=False)
    generate_key_pair(tmp_path / "conf" / "keys", "release")
    with pytest.raises(ConfigurationError, match=message) as info:
        load_spec(_write(tmp_path, security), [])
    assert "invalid serve configuration at security" in str(info.value)
