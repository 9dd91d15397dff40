"""GnuPG as an independent card client: key generation on a card through ``gpg --card-edit``."""

from __future__ import annotations

import subprocess


def gpg_generate_on_card(
    env: dict[str, str], *, name: str, email: str, pins: list[str], timeout: float = 120
) -> str:
    """Drive ``gpg --card-edit`` → admin → generate through --command-fd (``pins`` answer the
    passphrase prompts in order); return the primary key fingerprint from KEY_CREATED."""
    answers = {
        "cardedit.prompt": ["admin", "generate", "quit"],
        "cardedit.genkeys.backup_enc": ["n"],
        "keygen.valid": ["0"],
        "keygen.name": [name],
        "keygen.email": [email],
        "keygen.comment": [""],
        "passphrase.enter": list(pins),
    }
    proc = subprocess.Popen(
        ["gpg", "--no-tty", "--command-fd", "0", "--status-fd", "1", "--pinentry-mode",
         "loopback", "--card-edit"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    created = ""
    try:
        for line in proc.stdout:
            parts = line.split()
            if parts[:2] == ["[GNUPG:]", "KEY_CREATED"]:
                created = parts[3]
            if len(parts) >= 3 and parts[1] in ("GET_LINE", "GET_HIDDEN", "GET_BOOL"):
                queue = answers.get(parts[2], [])
                reply = queue.pop(0) if queue else ("y" if parts[1] == "GET_BOOL" else "quit")
                proc.stdin.write(reply + "\n")
                proc.stdin.flush()
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return created
