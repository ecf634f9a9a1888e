"""The process provider: each node is a real process tree on this machine, a node agent
(`hyperpod-local agent`) with the node's own volume directories, running the group's real
lifecycle scripts.

- `layout.py`: where a node's directories and the agent's files are.
- `confinement.py`: how a script is confined (bubblewrap, another user, or not at all).
- `sources.py`: fetching a group's lifecycle scripts (S3, or a local folder by mapping).
- `node_files.py`: the files HyperPod writes on a node for its scripts.
- `agent.py`: the node agent, the process the server starts for each node.
- `processes.py`: finding and ending every process of a node.
- `provider.py`: the Provider the engine calls; `monitor.py`: heartbeats and reports.
"""
