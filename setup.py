"""seg_ros: an ament_python ROS 2 package and a pip-installable library from one tree.

`colcon build` installs the executables under lib/seg_ros (setup.cfg) so that
`ros2 run seg_ros segmentation_node` finds them; `pip install -e .` puts the
`seg-ros` command on the PATH of the environment.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "seg_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["weights/*.safetensors"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.21",
        "torch==2.13.0",
        "safetensors>=0.4",
        "opencv-python-headless>=4.5",
        "tqdm>=4.60",
        "pyyaml>=5.4",
        "rosbags>=0.10",
        "matplotlib>=3.5",  # evaluation charts, drawn on the Agg canvas (no display needed)
        "onnx>=1.16",  # seg-ros export --onnx, ONNX model files and sidecars
        "onnxruntime>=1.18",  # the onnxruntime backend (CPU; install onnxruntime-gpu instead for CUDA), int8
    ],
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
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "seg-ros = seg_ros.cli:main",
            "segmentation_node = seg_ros.ros.node:main",
        ],
    },
)
