"""The start banner's ``mosquitto_sub`` hint: the broker, TLS and user, never the secret."""

from __future__ import annotations

import shlex

from edge_agent.config import MqttConfig

# mosquitto_sub turns TLS on only with a CA; without ca_file paho uses the system's CAs.
SYSTEM_CA_PATH = "/etc/ssl/certs"


def subscribe_command(mqtt: MqttConfig, host: str, port: int, topic: str) -> str:
    """A ``mosquitto_sub`` line that reaches the agent's broker as the agent does.

    TLS files and the username are spelled out; the password is read from its file by the
    shell (``-P "$(cat FILE)"``), so the banner never holds it.
    """
    words = ["mosquitto_sub", "-h", host, "-p", str(port)]
    tls = mqtt.tls
    if tls is not None:
        if tls.ca_file is not None:
            words += ["--cafile", str(tls.ca_file)]
        else:
            words += ["--capath", SYSTEM_CA_PATH]
        if tls.cert_file is not None and tls.key_file is not None:
            words += ["--cert", str(tls.cert_file), "--key", str(tls.key_file)]
        if tls.insecure:
            words.append("--insecure")
    if mqtt.username is not None:
        words += ["-u", mqtt.username]
    line = [shlex.quote(word) for word in words]
    if mqtt.password_file is not None:
        line += ["-P", f'"$(cat {shlex.quote(str(mqtt.password_file))})"']
    line += ["-t", shlex.quote(topic), "-v"]
    return " ".join(line)
