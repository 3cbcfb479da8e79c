"""The pydantic description of a federation: operators, aggregators, trust, numbering, ports.

One :class:`FederationConfig` is enough to start every party of a federation, in one process
or as separate processes: each :class:`FederatedOperator` *is* an
:class:`~operators.ServedOperatorConfig` (so ``Operator.from_config`` takes it as it is, and
its modelled network core and protection mean what they mean to ``ogsim serve``; each data
centre's replica runs its own) with what only the federation needs on top — data centres,
brands and IPv6 ranges. Countries say
whether numbers are portable there, which decides the Telco Routing rules: ``network``
(MCC+MNC, resolved by a national Network Id service) where numbers port, ``msisdnPrefix``
where they do not. :func:`default_federation` is the one ``ogsim demo`` and the tests use.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from operators import (
    E164_PREFIX,
    OperatorConfig,
    ServedOperatorConfig,
    default_purposes,
    load_yaml_model,
    scheme_problem,
)

from .rate_card import RateCard, WholesaleRate
from .types import NetworkId

_ID = r"^[a-z][a-z0-9_-]{1,31}$"
E164_NUMBER = re.compile(r"^\+[1-9][0-9]{4,14}$")
"""A full E.164 number: ``+`` then 5 to 15 digits, no separators."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what same-origin rules compare."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _partner_url(url: str | None) -> str | None:
    """A URL partners send secrets or personal data to: https, plain http only on a loopback
    host. A party's issuer (partners fetch its keys there and post assertions to it) or a
    country's Network Id service (the aggregator sends it subscribers' numbers): over http
    elsewhere a man in the middle could read them or swap the keys. (An operator's issuer is
    checked by :class:`~operators.config.OperatorConfig` itself.)"""
    refused = None if url is None else scheme_problem(url)
    if refused is not None:
        raise ValueError(f"{url}: {refused}")
    return url


class DataCentre(_Strict):
    """One site of an operator, active-active with the others; ``weight`` shares the traffic."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")
    weight: int = Field(default=1, gt=0, le=1000)


class Brand(_Strict):
    """A brand sold on its parent's network and ranges, told apart by a second-level finder.

    A number belongs to the brand when it is listed in ``numbers`` or starts with one of
    ``number_prefixes`` (sub-ranges of the parent's); every other number is the parent's.
    """

    id: str = Field(pattern=_ID)
    display_name: str
    number_prefixes: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    api_root: str | None = Field(default=None, description="defaults to the parent's API root")

    @field_validator("number_prefixes")
    @classmethod
    def _prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            if not E164_PREFIX.match(prefix):
                raise ValueError(f"{prefix!r} is not an E.164 prefix like '+44779'")
        return value

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for number in value:
            if not _is_e164(number):
                raise ValueError(f"{number!r} is not an E.164 number")
        return value

    def owns(self, number: str) -> bool:
        return number in self.numbers or any(number.startswith(p) for p in self.number_prefixes)


class FederatedOperator(ServedOperatorConfig):
    """An operator as the federation sees it: its config, the size and protection of its
    modelled network core (as ``ogsim serve`` reads them), plus sites, brands and IPv6."""

    data_centres: tuple[DataCentre, ...] = (DataCentre(name="dc1"),)
    brands: tuple[Brand, ...] = ()
    ipv6_ranges: tuple[str, ...] = ()

    @field_validator("ipv6_ranges")
    @classmethod
    def _ipv6(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            ipaddress.IPv6Network(cidr)
        return value

    @model_validator(mode="after")
    def _sites_and_brands(self) -> FederatedOperator:
        names = [dc.name for dc in self.data_centres]
        if not names or len(names) != len(set(names)):
            raise ValueError("an operator needs at least one data centre, each named once")
        for brand in self.brands:
            for prefix in brand.number_prefixes:
                if not self.owns(prefix):
                    raise ValueError(
                        f"brand {brand.id}: {prefix} is not inside the parent's ranges")
        return self

    @property
    def api_root(self) -> str:
        """Where the operator's CAMARA APIs, routing table and second-level finder live."""
        return origin_of(self.issuer_url)

    @property
    def auth_provider_configuration(self) -> str:
        return self.issuer_url.rstrip("/") + "/.well-known/openid-configuration"

    def brand_of(self, number: str) -> Brand | None:
        return next((b for b in self.brands if b.owns(number)), None)


class AggregatorConfig(_Strict):
    """An aggregator: one entry point and one set of credentials for applications."""

    id: str = Field(pattern=_ID)
    display_name: str
    issuer: str = Field(description="issuer URL of the aggregator's own authorization server")
    countries: tuple[str, ...] = Field(min_length=1)
    admin_secret: str = Field(default="admin-secret", min_length=8)
    storage: str = ":memory:"

    _issuer = field_validator("issuer")(_partner_url)

    @property
    def api_root(self) -> str:
        return origin_of(self.issuer)

    @property
    def telco_finder_url(self) -> str:
        return self.api_root + "/telco-finder/v1/search"

    def identity_config(self) -> OperatorConfig:
        """An operator-shaped config for the aggregator's own ``IdentityServer``.

        The identity server needs an ``OperatorConfig``; an aggregator serves no numbers, so it
        gets no subscribers and a placeholder range in ``+999`` (E.164's reserved code) on the
        test network 001-01. Only the client registry, keys and client credentials are used.

        Every purpose is allowed two-legged here: the aggregator processes no personal data
        itself, so its token only carries the application's purpose; the legal basis is
        enforced where the data is, by the serving operator (CIBA there when consent is needed).
        """
        purposes = tuple(p.model_copy(update={"two_legged": True}) for p in default_purposes())
        return OperatorConfig(
            id=self.id, display_name=self.display_name, country=self.countries[0],
            mcc="001", mnc="01", number_ranges=("+999",), subscribers=0,
            issuer=self.issuer, admin_secret=self.admin_secret, storage=self.storage,
            purposes=purposes,
        )


class TrustAnchor(_Strict):
    """A party that vouches for others (a federation registry, the GSMA); it issues nothing."""

    id: str = Field(pattern=_ID)
    display_name: str = ""
    endorses: tuple[str, ...] = ()


class TrustStatement(_Strict):
    """``party`` trusts ``trusts``: an issuer directly, or every party a named anchor endorses.

    Trust goes exactly one step (or one step through the named anchor); with ``transitive``
    the party also trusts whatever ``trusts`` itself trusts, the only way to get a longer path.
    """

    party: str
    trusts: str
    transitive: bool = False


class OtherNetwork(_Strict):
    """A network of a country that is not in the federation: numbers can port to or from it."""

    id: str = Field(pattern=_ID)
    display_name: str = ""
    network: NetworkId = Field(pattern=r"^[0-9]{5,6}$")
    number_ranges: tuple[str, ...] = Field(min_length=1)


class CountryConfig(_Strict):
    """A country's numbering: whether numbers port, and where its Network Id service lives."""

    code: str = Field(pattern=r"^[A-Z]{2}$")
    calling_code: str = Field(pattern=r"^\+[1-9][0-9]{0,2}$")
    portability: bool = False
    network_id_url: str | None = Field(
        default=None, description="base URL of the Network Id service; where portability"
    )
    other_networks: tuple[OtherNetwork, ...] = ()

    _network_id_scheme = field_validator("network_id_url")(_partner_url)

    @model_validator(mode="after")
    def _network_id(self) -> CountryConfig:
        if self.portability and not self.network_id_url:
            raise ValueError(f"{self.code} has portability: network_id_url is required")
        return self


class FederationConfig(_Strict):
    """Every party, how they trust each other, the countries' numbering and the ports."""

    name: str = "ogsim"
    operators: tuple[FederatedOperator, ...] = Field(min_length=1)
    aggregators: tuple[AggregatorConfig, ...] = ()
    anchors: tuple[TrustAnchor, ...] = ()
    trust: tuple[TrustStatement, ...] = ()
    countries: tuple[CountryConfig, ...] = ()
    ports: dict[str, str] = Field(
        default_factory=dict, description="number -> id of the operator or network serving it"
    )
    rate_card: RateCard = Field(
        default_factory=RateCard,
        description="wholesale price per call an aggregator pays an operator (settlement)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> FederationConfig:
        parties = [o.id for o in self.operators] + [a.id for a in self.aggregators]
        brands = [b.id for o in self.operators for b in o.brands]
        others = [n.id for c in self.countries for n in c.other_networks]
        ids = parties + [a.id for a in self.anchors] + brands + others
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"ids must be unique across the federation: {duplicates}")
        issuers = [o.issuer_url.rstrip("/") for o in self.operators]
        issuers += [a.issuer.rstrip("/") for a in self.aggregators]
        if len(issuers) != len(set(issuers)):
            raise ValueError("issuer URLs must be distinct")
        countries = {c.code for c in self.countries}
        for code in [o.country for o in self.operators] + [
            c for a in self.aggregators for c in a.countries
        ]:
            if code not in countries:
                raise ValueError(f"country {code} is used but not declared under 'countries'")
        if len(countries) != len(self.countries):
            raise ValueError("each country is declared once")
        self._check_ranges()
        self._check_trust(set(parties), {a.id for a in self.anchors})
        self._check_ports()
        self._check_rate_card()
        return self

    def _check_ranges(self) -> None:
        owned = [(p, o.id) for o in self.operators for p in o.number_ranges]
        owned += [(p, n.id) for c in self.countries for n in c.other_networks
                  for p in n.number_ranges]
        for i, (a, owner_a) in enumerate(owned):
            for b, owner_b in owned[i + 1:]:
                if owner_a != owner_b and (a.startswith(b) or b.startswith(a)):
                    raise ValueError(f"number ranges overlap: {a} ({owner_a}), {b} ({owner_b})")
        for country in self.countries:
            for network in country.other_networks:
                for prefix in network.number_ranges:
                    if not prefix.startswith(country.calling_code):
                        raise ValueError(f"{network.id}: {prefix} is not a {country.code} number")
        for operator in self.operators:
            code = self.country(operator.country).calling_code
            for prefix in operator.number_ranges:
                if not prefix.startswith(code):
                    raise ValueError(f"{operator.id}: {prefix} is not a {operator.country} number")

    def _check_trust(self, parties: set[str], anchors: set[str]) -> None:
        for anchor in self.anchors:
            unknown = set(anchor.endorses) - parties - anchors
            if unknown:
                raise ValueError(f"anchor {anchor.id} endorses unknown parties {sorted(unknown)}")
        for statement in self.trust:
            if statement.party not in parties:
                raise ValueError(f"trust statement by unknown party {statement.party!r}")
            if statement.trusts not in parties | anchors:
                raise ValueError(f"trust statement names unknown party {statement.trusts!r}")
            if statement.party == statement.trusts:
                raise ValueError(f"{statement.party} cannot state trust in itself")

    def _check_ports(self) -> None:
        for number, target in self.ports.items():
            if not _is_e164(number):
                raise ValueError(f"ported number {number!r} is not E.164")
            holder = self.range_holder(number)
            if holder is None:
                raise ValueError(f"ported number {number} is in no known number range")
            target_country = self.country_of_party(target)
            if target_country is None:
                raise ValueError(f"{number} is ported to unknown operator or network {target!r}")
            if target_country != self.country_of_party(holder):
                raise ValueError(f"{number} cannot port across countries (to {target})")
            if not self.country(target_country).portability:
                raise ValueError(f"{number}: {target_country} has no number portability")

    def _check_rate_card(self) -> None:
        card = self.rate_card
        aggregators = {a.id for a in self.aggregators}
        operators = {o.id for o in self.operators}
        for i, rate in enumerate(card.rates):
            if rate.aggregator not in aggregators:
                raise ValueError(f"rate_card.rates.{i}.aggregator: {rate.aggregator!r} is not an"
                                 f" aggregator of the federation ({sorted(aggregators)})")
            if rate.operator not in operators:
                raise ValueError(f"rate_card.rates.{i}.operator: {rate.operator!r} is not an"
                                 f" operator of the federation ({sorted(operators)})")
        unpriced = [f"{a} -> {o}" for a in sorted(aggregators) for o in sorted(operators)
                    if not card.priced(a, o)]
        if unpriced:
            raise ValueError("rate_card.default_price is null, so every (aggregator, operator)"
                             f" pair needs a rate under rate_card.rates: {', '.join(unpriced)}")

    # -- lookups ------------------------------------------------------------------------------

    def operator(self, operator_id: str) -> FederatedOperator:
        for operator in self.operators:
            if operator.id == operator_id:
                return operator
        raise KeyError(f"no operator {operator_id!r}")

    def aggregator(self, aggregator_id: str) -> AggregatorConfig:
        for aggregator in self.aggregators:
            if aggregator.id == aggregator_id:
                return aggregator
        raise KeyError(f"no aggregator {aggregator_id!r}")

    def country(self, code: str) -> CountryConfig:
        for country in self.countries:
            if country.code == code:
                return country
        raise KeyError(f"no country {code!r}")

    def networks_of(self, code: str) -> list[tuple[str, NetworkId, tuple[str, ...]]]:
        """Every network of a country as ``(id, MCC+MNC, ranges)``, members first."""
        rows = [(o.id, o.network, o.number_ranges) for o in self.operators if o.country == code]
        rows += [(n.id, n.network, n.number_ranges) for n in self.country(code).other_networks]
        return rows

    def range_holder(self, number: str) -> str | None:
        """The operator or network whose range holds ``number`` (ignoring ports)."""
        for country in self.countries:
            for party, _, ranges in self.networks_of(country.code):
                if any(number.startswith(p) for p in ranges):
                    return party
        return None

    def country_of_party(self, party: str) -> str | None:
        for operator in self.operators:
            if operator.id == party:
                return operator.country
        for country in self.countries:
            if any(n.id == party for n in country.other_networks):
                return country.code
        return None

    def network_of_party(self, party: str) -> NetworkId | None:
        for operator in self.operators:
            if operator.id == party:
                return operator.network
        for country in self.countries:
            for network in country.other_networks:
                if network.id == party:
                    return network.network
        return None

    def serving_party(self, number: str) -> str | None:
        """Who serves ``number`` according to the configured ports and ranges."""
        return self.ports.get(number) or self.range_holder(number)

    def issuer_of(self, party: str) -> str | None:
        """The issuer URL of an operator or aggregator; None for anchors and other networks."""
        for operator in self.operators:
            if operator.id == party:
                return operator.issuer_url.rstrip("/")
        for aggregator in self.aggregators:
            if aggregator.id == party:
                return aggregator.issuer.rstrip("/")
        return None


def _is_e164(number: str) -> bool:
    return bool(E164_NUMBER.match(number))


def load_federation(path: str | Path) -> FederationConfig:
    """A federation from a YAML file; errors name ``file:line: field: why``."""
    return load_yaml_model(path, FederationConfig)


PORTED_NUMBER = "+34620000150"
"""In the default federation: a Red Azul number ported in to telco-es."""
BRAND_NUMBER = "+447700000003"
"""In the default federation: a number of the Kite brand on telco-gb's range."""


def default_federation() -> FederationConfig:
    """Three operators in three countries, one aggregator, a ported number and a brand.

    * telco-es (ES, 214-07, ``+3460``/``+3461``): Spain has portability, so its rule matches
      ``network`` 21407; Red Azul (214-01, ``+3462``) is a Spanish network outside the
      federation, one of whose numbers (:data:`PORTED_NUMBER`) was ported in to telco-es.
    * telco-fr (FR, 208-88, ``+3361``/``+3362``): no portability here, ``msisdnPrefix`` rules.
    * telco-gb (GB, 234-58, ``+4477``): its brand Kite Mobile shares the range (numbers
      starting ``+447791`` and :data:`BRAND_NUMBER`), so its rule is ``dynamic``, resolved by
      telco-gb's second-level Telco Finder.
    * hub (the aggregator) serves all three countries. telco-es and telco-fr trust the hub
      directly; telco-gb trusts whoever the ``open-gateway`` anchor endorses (the hub and
      telco-es); telco-fr also trusts telco-es (not transitively).
    * The rate card: the hub pays each operator a wholesale price per billable call it served,
      dearer for SIM Swap, location and KYC; telco-gb is paid in pounds.
    """
    return FederationConfig(
        name="ogsim-default",
        operators=(
            FederatedOperator(
                id="telco-es", display_name="Telco España", country="ES", mcc="214", mnc="07",
                number_ranges=("+3460", "+3461"), ipv4_ranges=("10.34.0.0/16",),
                ipv6_ranges=("2001:db8:34::/48",), seed=7,
                data_centres=(DataCentre(name="madrid"), DataCentre(name="barcelona")),
            ),
            FederatedOperator(
                id="telco-fr", display_name="Télécom France", country="FR", mcc="208",
                mnc="88", number_ranges=("+3361", "+3362"), ipv4_ranges=("10.33.0.0/16",),
                ipv6_ranges=("2001:db8:33::/48",), seed=11,
                data_centres=(DataCentre(name="paris"), DataCentre(name="lyon")),
            ),
            FederatedOperator(
                id="telco-gb", display_name="Telco UK", country="GB", mcc="234", mnc="58",
                number_ranges=("+4477",), number_digits=12, ipv4_ranges=("10.44.0.0/16",),
                ipv6_ranges=("2001:db8:44::/48",), seed=13,
                data_centres=(DataCentre(name="london", weight=2),
                              DataCentre(name="manchester")),
                brands=(Brand(id="kite-gb", display_name="Kite Mobile",
                              number_prefixes=("+447791",), numbers=(BRAND_NUMBER,)),),
            ),
        ),
        aggregators=(
            AggregatorConfig(id="hub", display_name="Open Gateway Hub",
                             issuer="https://hub.ogsim.test/oauth",
                             countries=("ES", "FR", "GB")),
        ),
        anchors=(
            TrustAnchor(id="open-gateway", display_name="Open Gateway trust registry",
                        endorses=("hub", "telco-es")),
        ),
        trust=(
            TrustStatement(party="telco-es", trusts="hub"),
            TrustStatement(party="telco-fr", trusts="hub"),
            TrustStatement(party="telco-fr", trusts="telco-es"),
            TrustStatement(party="telco-gb", trusts="open-gateway"),
        ),
        countries=(
            CountryConfig(
                code="ES", calling_code="+34", portability=True,
                network_id_url="https://network-id.es.ogsim.test",
                other_networks=(OtherNetwork(id="red-azul", display_name="Red Azul",
                                             network="21401", number_ranges=("+3462",)),),
            ),
            CountryConfig(code="FR", calling_code="+33"),
            CountryConfig(code="GB", calling_code="+44"),
        ),
        ports={PORTED_NUMBER: "telco-es"},
        rate_card=RateCard(
            currency="EUR",
            rates=(
                WholesaleRate(aggregator="hub", operator="telco-es",
                              price_per_call=Decimal("0.0100"),
                              apis={"sim-swap": Decimal("0.0200"),
                                    "location-verification": Decimal("0.0150"),
                                    "kyc-match": Decimal("0.0500")}),
                WholesaleRate(aggregator="hub", operator="telco-fr",
                              price_per_call=Decimal("0.0100"),
                              apis={"sim-swap": Decimal("0.0180")}),
                WholesaleRate(aggregator="hub", operator="telco-gb", currency="GBP",
                              price_per_call=Decimal("0.0090"),
                              apis={"sim-swap": Decimal("0.0170")}),
            ),
        ),
    )
