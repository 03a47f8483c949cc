"""The pure parts of a farm of many machines: shared roots mapped on a node, who is loopback, what plain HTTP
exposes, the join command, protocol versions, the doctor's clock, certificate errors and token files."""

import os
import shlex
import ssl
from pathlib import Path

import pytest

from rayfarm import tls
from rayfarm.cli import doctor_checks, join
from rayfarm.domain.nodes import protocol_refusal
from rayfarm.worker.roots import map_lease, map_path, parse_map
from rayfarm.worker.tokens import TokenError, read_token_file


def lease(path, root):
    return {"leaseId": "L", "scene": {"url": "/v1/worker/scene/1", "path": path, "root": root, "sha256": "ab"}}


def test_a_mapped_shared_root_moves_the_scene_and_its_root_and_nothing_else():
    pairs = parse_map(["/srv/projects=/mnt/projects", "/srv/projects/big=/mnt/big/"])
    assert pairs[0] == ("/srv/projects/big", "/mnt/big")  # the longest server root first
    assert map_path("/srv/projects/a/shot.blend", pairs) == "/mnt/projects/a/shot.blend"
    assert map_path("/srv/projects/big/x.blend", pairs) == "/mnt/big/x.blend"
    assert map_path("/srv/projects", pairs) == "/mnt/projects"
    assert map_path("/srv/projectsX/a.blend", pairs) is None  # a sibling folder is not under the root
    original = lease("/srv/projects/a/shot.blend", "/srv/projects")
    mapped = map_lease(original, pairs)
    assert mapped["scene"] == {**original["scene"], "path": "/mnt/projects/a/shot.blend", "root": "/mnt/projects"}
    assert original["scene"]["path"] == "/srv/projects/a/shot.blend"  # the server's lease is left as it was
    unmapped = lease("/elsewhere/shot.blend", "/elsewhere")
    assert map_lease(unmapped, pairs) is unmapped and map_lease(original, []) is original
    downloaded = lease(None, None)
    assert map_lease(downloaded, pairs) is downloaded
    for bad in ("/srv", "srv=/mnt", "/srv=mnt"):
        with pytest.raises(ValueError, match="SERVER_PATH=LOCAL_PATH"):
            parse_map([bad])


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                             ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("::", False),
                                             ("192.168.1.10", False), ("farm.studio.lan", False)])
def test_loopback_addresses(host, loopback):
    assert tls.is_loopback(host) is loopback


def test_plain_http_beyond_this_machine_says_what_travels_in_clear():
    assert join.exposure_warning(join.Endpoint("127.0.0.1", 8765)) is None
    assert join.exposure_warning(join.Endpoint("0.0.0.0", 8765, Path("c.pem"), Path("k.pem"))) is None
    warning = join.exposure_warning(join.Endpoint("0.0.0.0", 8765))
    assert "every address of this machine" in warning and "HMAC-signed" in warning
    assert "worker token" in warning and "in clear" in warning and "--tls-cert" in warning
    assert "192.168.1.10" in join.exposure_warning(join.Endpoint("192.168.1.10", 8765))


def test_the_join_command_keeps_the_token_out_of_the_arguments():
    line = join.join_command("https://farm.lan:8765", "wt_a'b", Path("/etc/rayfarm/ca.pem"))
    words = shlex.split(line)
    assert words[0] == "RAYFARM_WORKER_TOKEN=wt_a'b" and "--token" not in words
    assert words[1:] == ["rayfarm", "worker", "run", "--server", "https://farm.lan:8765", "--ca-cert",
                         "/etc/rayfarm/ca.pem"]
    hidden = shlex.split(join.join_command("https://farm.lan:8765", None))
    assert hidden == ["rayfarm", "worker", "run", "--server", "https://farm.lan:8765", "--token-file", "worker-token"]
    assert join.Endpoint("0.0.0.0", 8765, public_url="https://farm.lan:8765/").url == "https://farm.lan:8765"
    assert join.Endpoint("127.0.0.1", 9, Path("c"), Path("k")).url == "https://127.0.0.1:9"


def test_adjacent_protocols_talk_and_others_are_told_which_side_to_upgrade():
    assert protocol_refusal(2, "0.2.0", server=2, oldest=1, server_version="0.2.0") is None
    assert protocol_refusal(1, "0.1.0", server=2, oldest=1, server_version="0.2.0") is None
    newer = protocol_refusal(3, "0.3.0", server=2, oldest=1, server_version="0.2.0")
    assert "upgrade the server first" in newer and "rayfarm 0.3.0" in newer
    older = protocol_refusal(1, "0.1.0", server=3, oldest=2, server_version="0.3.0")
    assert "upgrade the node" in older and "rayfarm==0.3.0" in older


def test_the_clock_within_the_signing_window():
    assert doctor_checks.clock(2.0).level == doctor_checks.OK
    assert doctor_checks.clock(-45.0).level == doctor_checks.WARN
    late = doctor_checks.clock(-301.0)
    assert late.level == doctor_checks.FAIL and "behind the server's" in late.text


def test_a_failed_certificate_check_becomes_a_sentence_anywhere_in_the_chain():
    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    cause.verify_message = "self-signed certificate in certificate chain"
    try:
        try:
            raise cause
        except ssl.SSLError as exc:
            raise ConnectionError("wrapped") from exc
    except ConnectionError as wrapped:
        said = tls.certificate_problem(wrapped)
    assert "not trusted" in said and "self-signed certificate" in said and "--ca-cert" in said
    mismatch = ssl.SSLCertVerificationError(1, "x")
    mismatch.verify_message = "IP address mismatch, certificate is not valid for '10.0.0.9'."
    assert "does not name the address" in tls.certificate_problem(mismatch)
    assert tls.certificate_problem(ConnectionRefusedError("refused")) is None


def test_a_studio_ca_that_cannot_be_used_is_a_sentence(tmp_path):
    with pytest.raises(tls.TrustError, match="does not exist"):
        tls.client_context(tmp_path / "missing.pem")
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(tls.TrustError, match="not a PEM CA certificate"):
        tls.client_context(tmp_path / "key.pem")
    assert tls.verify_for("http://farm:8765", tmp_path / "missing.pem") is True  # plain HTTP reads no CA


def test_a_token_file_is_private_and_holds_the_token_alone(tmp_path):
    path = tmp_path / "token"
    path.write_text("  wt_abc\n")
    os.chmod(path, 0o600)
    assert read_token_file(path) == "wt_abc"
    os.chmod(path, 0o644)
    with pytest.raises(TokenError, match="every user"):
        read_token_file(path)
    with pytest.raises(TokenError, match="does not exist"):
        read_token_file(tmp_path / "none")
