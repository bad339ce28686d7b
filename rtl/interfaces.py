"""Interface helpers shared by the components: port signatures and top-level conversion.

:class:`PortSignature` is the base of the memories' and the weight cache's read and write port
signatures (:class:`rtl.window.WindowMemory.ReadPort.Signature` and so on), after
:class:`amaranth.lib.memory.ReadPort.Signature`: a signature made from a few parameters, equal
to another of its class with the same parameters, whose :meth:`~PortSignature.create` makes an
interface object of the port's class.

:func:`verilog_ports` and :func:`to_verilog` convert a component at the top level when one of its
interfaces ties a member to a constant (the accelerator's ``writeback``, a stream that is always
ready): Amaranth 0.5's :func:`amaranth.back.verilog.convert` makes every member a port and
refuses constants (amaranth-lang/amaranth#1574), so the constant members are left out.
"""

from amaranth.back import verilog
from amaranth.hdl import Const, Value, ValueCastable
from amaranth.lib import wiring

__all__ = ["PortSignature", "to_verilog", "verilog_ports"]


class PortSignature(wiring.Signature):
    """A port signature of ``members`` made from keyword ``parameters``.

    Subclasses pass their parameters on (they become read-only attributes of the same names)
    and set :attr:`interface` to the class of the interface objects :meth:`create` makes.

    Parameters
    ----------
    members : dict
        The signature's members, as for :class:`amaranth.lib.wiring.Signature`.
    **parameters
        The values the members are made from; two signatures of one class are equal when their
        parameters are.
    """

    #: The class of the interface objects :meth:`create` makes (a
    #: :class:`~amaranth.lib.wiring.PureInterface` subclass).
    interface = wiring.PureInterface

    def __init__(self, members, **parameters):
        self._parameters = parameters
        super().__init__(members)

    def __getattr__(self, name):
        parameters = self.__dict__.get("_parameters", {})
        if name in parameters:
            return parameters[name]
        raise AttributeError(f"{type(self).__qualname__} has no attribute {name!r}")

    def create(self, *, path=None, src_loc_at=0):
        return self.interface(self, path=path, src_loc_at=1 + src_loc_at)

    def __eq__(self, other):
        return type(self) is type(other) and self._parameters == other._parameters

    def __repr__(self):
        arguments = ", ".join(f"{name}={value!r}" for name, value in self._parameters.items())
        return f"{type(self).__qualname__}({arguments})"


def verilog_ports(component):
    """The top-level ports of ``component`` as :func:`amaranth.back.verilog.convert` makes them
    from its signature (``path__to__member``), without the members its interfaces tie to
    constants (the ``ready`` of an always-ready stream). Directions are left to Amaranth, which
    takes them from the design's drivers (its direction type is not public)."""
    ports = {}
    for path, _, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Value) and not isinstance(value, Const):
            ports["__".join(map(str, path))] = (value, None)
    return ports


def to_verilog(component, **kwargs):
    """:func:`amaranth.back.verilog.convert` of ``component`` with the ports of
    :func:`verilog_ports`; keyword arguments (``name``, ``platform``, ``emit_src``, ...) pass
    on."""
    return verilog.convert(component, ports=verilog_ports(component), **kwargs)
