"""seg_ros: an ament_python ROS 2 package and a pip-installable library from one tree.

`colcon build` installs the executables under lib/seg_ros (setup.cfg) so that
`ros2 run seg_ros segmentation_node` finds them; `pip install -e .` (PEP 660,
pyproject.toml) puts the `seg-ros` command on the PATH of the environment.
The version comes from package.xml and the runtime dependencies from
requirements.txt, so each is written once.
"""

import xml.etree.ElementTree as ET
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "seg_ros"
HERE = Path(__file__).resolve().parent


def package_version() -> str:
    """The <version> of package.xml."""
    return ET.parse(HERE / "package.xml").getroot().findtext("version").strip()


def requirements(name: str = "requirements.txt") -> list[str]:
    """The requirement lines of a pip requirements file, without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in (HERE / name).read_text().splitlines())
    return [line for line in lines if line]


setup(
    name=PACKAGE,
    version=package_version(),
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["weights/*.safetensors", "ros/fastdds_profile.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    python_requires=">=3.10",
    install_requires=requirements(),
    extras_require={
        # cityscapesscripts: the reference for IoU / mIoU (test/test_cityscapes_reference.py). Its metadata also
        # pulls in the PyPI `typing` backport; on Python >= 3.5 the standard library's typing shadows it (harmless).
        # pydensecrf2: the exact dense CRF (crf.method=exact), built from source (a C++ compiler, about a minute);
        # the fast CRF needs nothing beyond torch.
        "crf": ["pydensecrf2>=1.1"],
        "test": ["pytest>=7", "ruff>=0.5", "cityscapesscripts>=2.2", "pydensecrf2>=1.1"],
        # The tensorrt backend: TensorRT 10 from PyPI, on machines with an NVIDIA GPU and driver.
        "tensorrt": ["tensorrt>=10,<11"],
    },
    zip_safe=True,
    maintainer="seg_ros maintainers",
    maintainer_email="maintainers@users.noreply.h-seed-7131121e.example",
    description="Real-time semantic segmentation (LiteSeg, DeepLab) for ROS 2 camera streams",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "seg-ros = seg_ros.cli:main",
            "segmentation_node = seg_ros.ros.node:main",
            "segmentation_lifecycle_node = seg_ros.ros.lifecycle_node:main",
        ],
    },
)
