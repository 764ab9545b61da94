"""Pure compiler: cluster snapshot + node -> nftables ruleset (model, nft text, JSON batches).

``compile_node`` / ``compile_host`` build a ``Ruleset``; ``render_text`` prints it for review;
``nftjson.transaction`` turns (applied, desired) into one atomic libnftables batch;
``simulate`` interprets a ruleset in Python (differential tests against the engine).
"""

from netfence.nft.compile import HostEndpoint, compile_host, compile_node
from netfence.nft.model import HostConfig, Ruleset
from netfence.nft.nftjson import Present, full_json, transaction
from netfence.nft.text import render_text

__all__ = ["HostConfig", "HostEndpoint", "Present", "Ruleset", "compile_host", "compile_node",
           "full_json", "render_text", "transaction"]
