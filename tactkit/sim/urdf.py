"""URDF assembly: the Franka Panda from ``pybullet_data`` with a task tool on a fixed joint.

The arm's URDF is generated once per tool into a content-addressed file under the temp dir
(PyBullet caches URDFs by path, so a unique name per content is required). Two changes to the
stock ``franka_panda/panda.urdf``:

* the detailed visual meshes are replaced by the convex collision meshes, which makes
  TinyRenderer ~10x faster (2 ms instead of 22 ms for a 96x96 image; see docs/simulation.md);
* for a tool other than ``gripper`` the fingers are removed and the tool's links are attached
  to ``panda_hand`` with a fixed joint at the finger base. ``gripper`` keeps the fingers.

Tools are standalone URDFs in :mod:`tactkit.sim.assets` (each is drop-tested on its own);
each has a ``tool_base`` root link, a ``tcp`` frame at the working face (z pointing out of
the tool) and one collision link that carries the tactile gel.
"""

from __future__ import annotations

import hashlib
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pybullet_data

ASSETS = Path(__file__).resolve().parent / "assets"
#: tool name -> (URDF file, name of the link carrying the gel)
TOOLS: dict[str, tuple[str, str]] = {
    "wipe_pad": ("wipe_pad.urdf", "pad"),
    "peel_blade": ("peel_blade.urdf", "blade"),
    "clamp_pad": ("clamp_pad.urdf", "pad"),
}
GRIPPER = "gripper"
#: where tools are mounted on ``panda_hand`` (m, along the hand's z axis): the finger base
TOOL_MOUNT_Z = 0.0584
_FINGER_ELEMENTS = {
    "panda_leftfinger",
    "panda_rightfinger",
    "panda_finger_joint1",
    "panda_finger_joint2",
    "panda_grasptarget",
    "panda_grasptarget_hand",
}


def tool_path(tool: str) -> Path:
    """Path of a tool's standalone URDF; ``KeyError`` naming the known tools otherwise."""
    try:
        return ASSETS / TOOLS[tool][0]
    except KeyError:
        raise KeyError(f"unknown tool {tool!r}; known: {', '.join(sorted(TOOLS))}, {GRIPPER}") from None


def panda_urdf(tool: str) -> Path:
    """Write (once) and return the path of a Panda URDF carrying ``tool``."""
    panda_dir = Path(pybullet_data.getDataPath()) / "franka_panda"
    text = (panda_dir / "panda.urdf").read_text()
    text = text.replace("package://meshes/", f"{panda_dir}/meshes/")
    text = text.replace("meshes/visual/", "meshes/collision/")
    root = ET.fromstring(text)
    if tool != GRIPPER:
        for el in list(root):
            if el.get("name") in _FINGER_ELEMENTS:
                root.remove(el)
        tool_root = ET.parse(tool_path(tool)).getroot()
        for el in tool_root:
            if el.tag in ("link", "joint"):
                root.append(el)
        mount = ET.SubElement(root, "joint", name="tool_mount", type="fixed")
        ET.SubElement(mount, "parent", link="panda_hand")
        ET.SubElement(mount, "child", link="tool_base")
        ET.SubElement(mount, "origin", xyz=f"0 0 {TOOL_MOUNT_Z}", rpy="0 0 0")
    else:
        tcp = ET.SubElement(root, "link", name="tcp")
        inertial = ET.SubElement(tcp, "inertial")
        ET.SubElement(inertial, "mass", value="0.0")
        ET.SubElement(inertial, "inertia", ixx="0", ixy="0", ixz="0", iyy="0", iyz="0", izz="0")
        joint = ET.SubElement(root, "joint", name="tcp_joint", type="fixed")
        ET.SubElement(joint, "parent", link="panda_hand")
        ET.SubElement(joint, "child", link="tcp")
        ET.SubElement(joint, "origin", xyz="0 0 0.105", rpy="0 0 0")
    out = ET.tostring(root, encoding="unicode")
    digest = hashlib.sha1(out.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / "tactkit_sim" / f"panda_{tool}_{digest}.urdf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{digest}.tmp")
        tmp.write_text(out)
        tmp.replace(path)
    return path
