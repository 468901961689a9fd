"""Platform profiles: what the lab adds to FakeNOS so that netmiko can drive each platform.

FakeNOS ships an exec-mode command table per platform, but out of the box only
``arista_eos`` survives netmiko's ``send_config_set``; ``cisco_ios`` has no config mode
at all, ``juniper_junos`` prompts lack the trailing space netmiko looks for (which makes
every Junos disconnect wait ~10 s), and ``linux`` cannot ``sudo``. A
:class:`PlatformProfile` holds the extra command entries (exact lines, FakeNOS format),
the config-mode line rules (regular expressions, evaluated by
:class:`netpulse.lab.shell.LabShell`) and prompt rewrites for one platform.

Parsing a platform's YAML takes ~0.4 s (cisco_ios has ~4,500 lines), so
:func:`build_nos` parses each platform once per process and every simulated device of
that platform shares the result; FakeNOS deep-copies the command table per SSH session,
so sharing is safe.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from fakenos.core.nos import Nos
from fakenos.plugins.nos import nos_plugins

__all__ = [
    "INVALID_INPUT",
    "ConfigReply",
    "ConfigRule",
    "ExitCommand",
    "LabNos",
    "PlatformProfile",
    "build_nos",
    "profile_for",
    "supported_platforms",
]

INVALID_INPUT = "% Invalid input detected at '^' marker."
"""Cisco-style rejection; config lines starting with ``bogus`` get it on every platform so
that tests can simulate a device refusing a command."""


@dataclass(frozen=True)
class ConfigReply:
    """What the device prints for one config-mode line and the prompt it moves to."""

    output: str = ""
    new_prompt: str | None = None


@dataclass(frozen=True)
class ConfigRule:
    """A config-mode line rule: ``pattern`` must match the whole (stripped) line.

    ``output`` and ``new_prompt`` are templates formatted with ``base_prompt`` and the
    pattern's named groups, e.g. ``"{base_prompt}(config-if-{ifname})#"``.
    """

    pattern: str
    output: str = ""
    new_prompt: str | None = None

    def reply(self, line: str, base_prompt: str) -> ConfigReply | None:
        """Return the reply if ``line`` matches this rule, else ``None``."""
        match = re.fullmatch(self.pattern, line)
        if match is None:
            return None
        values = {key: value or "" for key, value in match.groupdict().items()}
        new_prompt = (
            self.new_prompt.format(base_prompt=base_prompt, **values) if self.new_prompt else None
        )
        return ConfigReply(self.output.format(base_prompt=base_prompt, **values), new_prompt)


@dataclass(frozen=True)
class ExitCommand:
    """Callable FakeNOS output for ``exit``: leave the current mode, or end the session.

    FakeNOS's built-in ``exit`` closes the session from any prompt, which would drop the
    connection when netmiko leaves an interface sub-mode. ``closes_at`` lists the prompt
    templates where ``exit`` ends the session; ``parents`` maps a prompt template to the
    one ``exit`` returns to; any other prompt (a config sub-mode) goes to
    ``default_parent``, printing ``message``.
    """

    closes_at: tuple[str, ...]
    parents: tuple[tuple[str, str], ...] = ()
    default_parent: str | None = None
    message: str = ""

    def __call__(
        self, device: Any, base_prompt: str, current_prompt: str, command: str
    ) -> bool | dict[str, str]:
        """Return True to end the session, or the output and the prompt to move to."""
        if current_prompt in (p.format(base_prompt=base_prompt) for p in self.closes_at):
            return True
        for prompt, parent in self.parents:
            if current_prompt == prompt.format(base_prompt=base_prompt):
                return {"output": "", "new_prompt": parent}
        if self.default_parent is None:
            return True
        return {"output": self.message, "new_prompt": self.default_parent}


@dataclass(frozen=True)
class PlatformProfile:
    """Lab additions for one FakeNOS platform (see module docstring)."""

    platform: str
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    initial_prompt: str | None = None
    prompt_renames: dict[str, str] = field(default_factory=dict)
    drop_commands: tuple[str, ...] = ()
    config_prompt_pattern: str | None = None
    config_rules: tuple[ConfigRule, ...] = ()

    def is_config_prompt(self, prompt: str) -> bool:
        """True if ``prompt`` (already formatted) is one of this platform's config modes."""
        pattern = self.config_prompt_pattern
        if not pattern:
            return False
        return bool(re.search(pattern, prompt))

    def config_reply(self, line: str, base_prompt: str) -> ConfigReply:
        """Answer a config-mode line that is not in the exact command table.

        Lines starting with ``bogus`` are rejected; the first matching rule answers;
        anything else is accepted silently, as a real device accepts valid config.
        """
        if line.startswith("bogus"):
            return ConfigReply(INVALID_INPUT)
        for rule in self.config_rules:
            reply = rule.reply(line, base_prompt)
            if reply is not None:
                return reply
        return ConfigReply()

    def rename_prompts(self, commands: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Return ``commands`` with prompt templates rewritten by ``prompt_renames``.

        Junos needs this: its YAML uses ``{base_prompt}>`` but netmiko expects a trailing
        space, and a command whose ``prompt`` no longer matches is rejected by FakeNOS.
        """
        if not self.prompt_renames:
            return commands
        renamed: dict[str, dict[str, Any]] = {}
        for line, entry in commands.items():
            entry = dict(entry)
            for key in ("prompt", "new_prompt"):
                value = entry.get(key)
                if isinstance(value, str):
                    entry[key] = self.prompt_renames.get(value, value)
                elif isinstance(value, list):
                    entry[key] = [self.prompt_renames.get(v, v) for v in value]
            renamed[line] = entry
        return renamed


class LabNos(Nos):
    """A FakeNOS :class:`Nos` that also carries its :class:`PlatformProfile`.

    :class:`netpulse.lab.shell.LabShell` only receives the ``Nos`` object, so the profile
    travels on it.
    """

    # Set by FakeNOS's ``Nos.__init__`` (fakenos is untyped); declared so mypy knows them.
    commands: dict[str, dict[str, Any]]

    def __init__(self, profile: PlatformProfile, filename: list[str]) -> None:
        self.profile = profile
        super().__init__(name=profile.platform, filename=filename)
        self.commands = profile.rename_prompts(self.commands)
        for line in profile.drop_commands:
            self.commands.pop(line, None)
        self.commands.update(profile.commands)
        if profile.initial_prompt is not None:
            self.initial_prompt = profile.initial_prompt
        self.validate()


# --- Cisco IOS -------------------------------------------------------------------------

_IOS_USER = "{base_prompt}>"
_IOS_ENABLE = "{base_prompt}#"
_IOS_CONFIG = "{base_prompt}(config)#"
_WRITE_OK = "Building configuration...\n[OK]"

_CISCO_EXIT = ExitCommand(
    closes_at=(_IOS_USER, _IOS_ENABLE),
    parents=((_IOS_CONFIG, _IOS_ENABLE),),
    default_parent=_IOS_CONFIG,
)

_CISCO_LIKE_RULES = (
    ConfigRule(r"end", new_prompt=_IOS_ENABLE),
    ConfigRule(r"router\s+\S.*", new_prompt="{base_prompt}(config-router)#"),
    ConfigRule(r"line\s+\S.*", new_prompt="{base_prompt}(config-line)#"),
    ConfigRule(r"vlan\s+\d+", new_prompt="{base_prompt}(config-vlan)#"),
    ConfigRule(r"do\s+wr(ite)?(\s+mem(ory)?)?", output=_WRITE_OK),
)

CISCO_IOS = PlatformProfile(
    platform="cisco_ios",
    commands={
        "configure terminal": {
            "output": "Enter configuration commands, one per line.  End with CNTL/Z.",
            "new_prompt": _IOS_CONFIG,
            "prompt": _IOS_ENABLE,
            "help": "Enter configuration mode",
        },
        "conf t": {"alias": "configure terminal"},
        "config t": {"alias": "configure terminal"},
        "write memory": {
            "output": _WRITE_OK,
            "prompt": _IOS_ENABLE,
            "help": "Write running configuration to memory",
        },
        "write mem": {"alias": "write memory"},
        "write": {"alias": "write memory"},
        "wr": {"alias": "write memory"},
        "disable": {"output": None, "new_prompt": _IOS_USER, "prompt": _IOS_ENABLE},
        "exit": {"output": _CISCO_EXIT, "help": "Exit the current mode"},
    },
    config_prompt_pattern=r"\(config[^)]*\)#$",
    config_rules=(
        ConfigRule(r"interface\s+\S.*", new_prompt="{base_prompt}(config-if)#"),
        *_CISCO_LIKE_RULES,
    ),
)

# --- Arista EOS ------------------------------------------------------------------------

_EOS_COPY_OK = "Copy completed successfully."

ARISTA_EOS = PlatformProfile(
    platform="arista_eos",
    commands={
        "write memory": {"output": _EOS_COPY_OK, "prompt": _IOS_ENABLE},
        "write": {"alias": "write memory"},
        "copy running-config startup-config": {"output": _EOS_COPY_OK, "prompt": _IOS_ENABLE},
        "disable": {"output": None, "new_prompt": _IOS_USER, "prompt": _IOS_ENABLE},
        # FakeNOS's make_exit raises on any prompt other than exec and "(config)#".
        "exit": {"output": _CISCO_EXIT, "help": "Exit the current mode"},
    },
    config_prompt_pattern=r"\(config[^)]*\)#$",
    config_rules=(
        ConfigRule(r"interface\s+(?P<ifname>\S+)", new_prompt="{base_prompt}(config-if-{ifname})#"),
        *_CISCO_LIKE_RULES,
    ),
)

# --- Juniper Junos ---------------------------------------------------------------------

_JUNOS_OPER = "{base_prompt}> "
_JUNOS_CONFIG = "[edit]\n{base_prompt}# "
_JUNOS_EXIT_MSG = "Exiting configuration mode"
_JUNOS_CONFIRMED = (
    "commit confirmed will be automatically rolled back in 10 minutes unless confirmed\n"
    "commit complete"
)

JUNIPER_JUNOS = PlatformProfile(
    platform="juniper_junos",
    initial_prompt=_JUNOS_OPER,
    prompt_renames={"{base_prompt}>": _JUNOS_OPER, "{base_prompt}#": _JUNOS_CONFIG},
    # The YAML's "enable" would lead into the config prompt after the renames; Junos has
    # no enable mode (netmiko's Junos driver never sends it).
    drop_commands=("enable",),
    commands={
        "configure": {
            "output": "Entering configuration mode",
            "new_prompt": _JUNOS_CONFIG,
            "prompt": _JUNOS_OPER,
            "help": "Manipulate software configuration information",
        },
        "configure private": {"alias": "configure"},
        "configure exclusive": {"alias": "configure"},
        # netmiko's session preparation waits for these exact confirmations.
        "set cli screen-length 0": {"output": "Screen length set to 0", "prompt": _JUNOS_OPER},
        "set cli complete-on-space off": {
            "output": "Disabling complete-on-space",
            "prompt": _JUNOS_OPER,
        },
        "exit": {
            "output": ExitCommand(
                closes_at=(_JUNOS_OPER,), default_parent=_JUNOS_OPER, message=_JUNOS_EXIT_MSG
            ),
            "help": "Exit the command shell or configuration mode",
        },
        "quit": {"alias": "exit"},
        "_default_": {"output": "unknown command.", "help": "Output for unknown commands"},
    },
    config_prompt_pattern=r"^\[edit[^\]]*\]\n",
    config_rules=(
        ConfigRule(
            r"(exit|quit)\s+configuration-mode", output=_JUNOS_EXIT_MSG, new_prompt=_JUNOS_OPER
        ),
        ConfigRule(r"commit\s+check", output="configuration check succeeds"),
        ConfigRule(r"commit\s+confirmed(\s+\d+)?(\s+comment\s+.*)?", output=_JUNOS_CONFIRMED),
        ConfigRule(
            r"commit(\s+comment\s+.*)?\s+and-quit",
            output=f"commit complete\n{_JUNOS_EXIT_MSG}",
            new_prompt=_JUNOS_OPER,
        ),
        ConfigRule(r"commit(\s+comment\s+.*)?", output="commit complete"),
        ConfigRule(r"rollback(\s+\d+)?", output="load complete"),
    ),
)

# --- Linux -----------------------------------------------------------------------------

_LINUX_USER = "{base_prompt}$"
_LINUX_ROOT = "{base_prompt}#"

LINUX = PlatformProfile(
    platform="linux",
    commands={
        # netmiko's LinuxSSH.enable() sends "sudo -s" and accepts a "#" prompt.
        "sudo -s": {"output": None, "new_prompt": _LINUX_ROOT, "prompt": _LINUX_USER},
        "sudo su": {"alias": "sudo -s"},
        "uname -a": {
            "output": "Linux {base_prompt} 6.1.0-netpulse-lab #1 SMP Debian x86_64 GNU/Linux",
            "prompt": [_LINUX_USER, _LINUX_ROOT],
        },
        "hostname": {"output": "{base_prompt}", "prompt": [_LINUX_USER, _LINUX_ROOT]},
        "exit": {
            "output": ExitCommand(closes_at=(_LINUX_USER,), parents=((_LINUX_ROOT, _LINUX_USER),)),
            "help": "Leave the root shell or log out",
        },
        "_default_": {"output": "-bash: command not found", "help": "Unknown command"},
    },
)

_PROFILES: dict[str, PlatformProfile] = {
    p.platform: p for p in (CISCO_IOS, ARISTA_EOS, JUNIPER_JUNOS, LINUX)
}

_nos_cache: dict[str, LabNos] = {}
_nos_cache_lock = threading.Lock()


def supported_platforms() -> list[str]:
    """All FakeNOS platforms; those with a profile also support netmiko config mode."""
    return sorted(nos_plugins)


def profile_for(platform: str) -> PlatformProfile:
    """Return the lab profile for ``platform`` (an empty one for FakeNOS-only platforms)."""
    if platform not in nos_plugins:
        raise ValueError(
            f"unknown FakeNOS platform {platform!r}; choose from {supported_platforms()}"
        )
    return _PROFILES.get(platform, PlatformProfile(platform=platform))


def build_nos(platform: str) -> LabNos:
    """Return the shared, parsed :class:`LabNos` for ``platform`` (parsed once per process)."""
    with _nos_cache_lock:
        nos = _nos_cache.get(platform)
        if nos is None:
            nos = LabNos(profile_for(platform), filename=list(nos_plugins[platform]))
            _nos_cache[platform] = nos
        return nos
